"""The common corruptions of Hendrycks & Dietterich (2019) by name, and `corrupt`, which
applies one to a batch of images at a severity from 1 to 5.

The definitions and severity constants are those of the reference generators, per image
size: the CIFAR-10-C generator's for 32 px images, Tiny-ImageNet-C's for 64 px and
ImageNet-C's for 224 px, reimplemented on numpy, OpenCV and scipy. No ImageMagick: motion
blur (and the snow's streaks) is ImageMagick's one-sided Gaussian line kernel applied with
OpenCV; frost uses a procedural texture instead of the six photographs. Where the
reference code does something other than it says, we follow what it does, since that made
the published sets: glass blur copies neighbours rather than swapping them (see
`blur.glass_sources`).

Other sizes use the constants of the nearest reference size on a log scale (shorter side
below 45 px: CIFAR-10-C; below 120 px: Tiny-ImageNet-C; from 120 px on: ImageNet-C), with
every spatial constant (blur radii and sigmas, glass-blur displacement, affine jitter)
multiplied by `side / reference side`, so it covers the same fraction of the image as in
the reference set (for 299 px Inception inputs the authors raised ImageNet-C's radii by
about the same factor); zoom factors, pixelation fractions, noise levels and JPEG
qualities are relative and kept. Random layers (snow flakes, spatter liquid, elastic
displacements) are drawn on the reference grid and resized to the image, so their
statistics match the reference set's; the fog fractal is drawn at the image's size. At
32, 64 and 224 px this is the reference exactly, up to the random numbers and the
reference's rounding to 8 bits between steps, which we skip.

Grayscale images: the colour corruptions (saturate, snow, frost, spatter) run on the
image as RGB and return its BT.601 luma; the others work on each channel as it is.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from keras_cnnvis.robustness import blur, digital, frost, noise, weather
from keras_cnnvis.robustness._common import geometry

_FUNCTIONS: dict[str, Callable] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": frost.frost,
    "fog": weather.fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": weather.spatter,
    "saturate": digital.saturate,
}

# The 15 corruptions of the benchmark (mCE averages over these), in the paper's order.
BENCHMARK: tuple[str, ...] = tuple(list(_FUNCTIONS)[:15])
# The 4 held-out corruptions (for validation; not in the mCE).
HELD_OUT: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS: tuple[str, ...] = BENCHMARK + HELD_OUT
# The paper's four families, each with its held-out corruption last.
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def check_name(name: str) -> str:
    """Returns `name` if it is a corruption; raises ValueError listing them otherwise."""
    if not isinstance(name, str) or name not in _FUNCTIONS:
        raise ValueError(
            f"Unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)} "
            "(keras_cnnvis.robustness.CORRUPTIONS)."
        )
    return name


def check_severity(severity: int) -> int:
    """Returns `severity` as an int if it is 1-5; raises ValueError otherwise."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise ValueError(f"severity must be an integer from 1 to 5; got {severity!r}.")
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be from 1 to 5; got {severity}.")
    return int(severity)


def check_value_range(value_range: Sequence[float]) -> tuple[float, float]:
    """`(low, high)` floats with low < high; raises ValueError otherwise."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"value_range must be (low, high), e.g. (0, 1) or (0, 255); got {value_range!r}."
        ) from None
    if not low < high:
        raise ValueError(f"value_range must have low < high; got {value_range!r}.")
    return low, high


def to_unit(images, value_range: Sequence[float] = (0, 1), what: str = "images") -> np.ndarray:
    """Validated images `(N, H, W, 1 or 3)` mapped from `value_range` to [0, 1], float32.

    Raises:
        ValueError: for anything `inputs.check_images` refuses, channels other than 1 or
            3, or pixels outside `value_range`.
    """
    from keras_cnnvis.inputs import check_images

    x = check_images(images, what=what)
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            f"The {what} have {x.shape[-1]} channels; corruptions take grayscale (1) or RGB "
            "(3) images, channels last."
        )
    low, high = check_value_range(value_range)
    lo, hi = float(x.min()), float(x.max())
    tol = 1e-4 * (high - low)
    if lo < low - tol or hi > high + tol:
        raise ValueError(
            f"The {what} range over [{lo:g}, {hi:g}], outside value_range ({low:g}, {high:g}); "
            "pass the range the pixels are in, e.g. value_range=(0, 255)."
        )
    if (low, high) != (0.0, 1.0):
        x = (x - np.float32(low)) / np.float32(high - low)
    elif lo >= 0 and hi <= 1:
        return x  # already in [0, 1] (the corruptions never write into their input)
    return np.clip(x, 0, 1).astype(np.float32)


def from_unit(x: np.ndarray, value_range: Sequence[float] = (0, 1)) -> np.ndarray:
    """[0, 1] images back to `value_range`, float32."""
    low, high = check_value_range(value_range)
    if (low, high) == (0.0, 1.0):
        return x.astype(np.float32, copy=False)
    return (x * np.float32(high - low) + np.float32(low)).astype(np.float32)


def apply(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Corrupts already validated float32 images in [0, 1] (no checks; see `corrupt`)."""
    geo = geometry(x.shape[1], x.shape[2])
    return _FUNCTIONS[name](x, severity, rng, geo).astype(np.float32, copy=False)


def corrupt(
    images,
    name: str,
    severity: int,
    seed: int = 0,
    value_range: Sequence[float] = (0, 1),
) -> np.ndarray:
    """Applies one of the 19 common corruptions of Hendrycks & Dietterich (2019) to a batch.

    Follows the reference generators (CIFAR-10-C at 32 px, Tiny-ImageNet-C at 64 px,
    ImageNet-C at 224 px and up; other sizes as described in this module's docstring).
    The random corruptions draw from `seed`: the same seed and batch give the same output.

    Example:

    ```python
    from keras_cnnvis.robustness import CORRUPTIONS, corrupt

    noisy = corrupt(x_val, "gaussian_noise", severity=3)
    every = {name: corrupt(x_val, name, 5) for name in CORRUPTIONS}
    ```

    Args:
        images: float `(N, H, W, C)` with C = 1 (grayscale) or 3 (RGB), any size.
        name: the corruption, one of `CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
        seed: seed of the random corruptions. Defaults to 0.
        value_range: the range of the pixel values, e.g. `(0, 255)`; the output has the
            same range. Defaults to `(0, 1)`.

    Returns:
        The corrupted images, float32 of the input's shape, within `value_range`.

    Raises:
        ValueError: for an unknown corruption, a severity outside 1-5, images that are
            not a batch of grayscale or RGB images, or pixels outside `value_range`.
    """
    check_name(name)
    severity = check_severity(severity)
    x = to_unit(images, value_range)
    return from_unit(apply(x, name, severity, np.random.default_rng(seed)), value_range)
