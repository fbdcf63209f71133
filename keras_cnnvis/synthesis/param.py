"""Image parameterisations: each returns `(variables, image_fn)`, where `image_fn()` gives the
`(N, H, W, C)` image batch in [0, 1] that the optimiser changes through `variables`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

# Lucid's square root of ImageNet's colour covariance (its SVD), used to decorrelate colours.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))
PIXEL_MODES = ("sigmoid", "raw")

Param = tuple  # (list[tf.Variable], Callable[[], tf.Tensor])


def _logit(image: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    x = np.clip(np.asarray(image, np.float64), eps, 1 - eps)
    return np.log(x / (1 - x)).astype(np.float32)


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"An image shape is (height, width, channels); got {shape}.")
    return shape


def _init_batch(init: Any, batch: int, shape: tuple) -> np.ndarray | None:
    if init is None:
        return None
    init = np.asarray(init, np.float32)
    if init.ndim == 3:
        init = init[None]
    if init.shape[1:] != shape:
        raise ValueError(
            f"The initial image has shape {init.shape[1:]}, the parameterisation {shape}; "
            "resize it first (keras_cnnvis.rendering.image.resize)."
        )
    if len(init) == 1 and batch > 1:
        init = np.repeat(init, batch, axis=0)
    if len(init) != batch:
        raise ValueError(f"{len(init)} initial images for a batch of {batch}.")
    return init


def pixel_image(
    shape: Sequence[int],
    batch: int = 1,
    sd: float = 0.01,
    init: Any = None,
    mode: str = "sigmoid",
    seed: int = 0,
) -> Param:
    """Parameterises images by their pixels.

    The variable is centred, so 0 means mid-grey: with `mode="sigmoid"` the image is
    `sigmoid(v)` (always valid); with `mode="raw"` it is `v + 0.5` (used with a
    projection such as `regularizers.keep_in_range()`, e.g. for DeepDream and adversarial
    examples). The regularisers of Yosinski et al. (2015) act on this variable.

    Example:

    ```python
    variables, image_fn = pixel_image((64, 64, 3))
    image_fn().shape  # (1, 64, 64, 3)
    ```

    Args:
        shape: `(height, width, channels)`.
        batch: images in the batch. Defaults to 1.
        sd: standard deviation of the random start. Defaults to 0.01.
        init: start from this image or batch in [0, 1] instead of noise. Defaults to None.
        mode: `"sigmoid"` or `"raw"`. Defaults to `"sigmoid"`.
        seed: seed of the random start. Defaults to 0.

    Returns:
        `([variable], image_fn)`.

    Raises:
        ValueError: for a bad shape, mode or initial image.
    """
    shape = _check_shape(shape)
    if mode not in PIXEL_MODES:
        raise ValueError(f"mode must be one of {PIXEL_MODES}; got {mode!r}.")
    start = _init_batch(init, batch, shape)
    if start is None:
        rng = np.random.default_rng(seed)
        value = (sd * rng.standard_normal((batch,) + shape)).astype(np.float32)
    elif mode == "sigmoid":
        value = _logit(start)
    else:
        value = (start - 0.5).astype(np.float32)
    var = tf.Variable(value, name="pixels")
    if mode == "sigmoid":
        return [var], lambda: tf.sigmoid(var)
    return [var], lambda: var + 0.5


def _freqs(h: int, w: int) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def _decorrelate(t: tf.Tensor, channels: int) -> tf.Tensor:
    if channels != 3:
        return t
    return tf.einsum("nhwc,dc->nhwd", t, tf.constant(_COLOR))


def fourier_image(
    shape: Sequence[int],
    batch: int = 1,
    sd: float = 0.01,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    init: Any = None,
    seed: int = 0,
) -> Param:
    """Parameterises images by a scaled Fourier spectrum with decorrelated colour (Lucid).

    Each frequency is scaled by `1 / f^decay_power`, so gradient steps change low
    frequencies as readily as high ones (no high-frequency noise); three-channel images go
    through the square root of ImageNet's colour correlation before a sigmoid.

    Example:

    ```python
    variables, image_fn = fourier_image((64, 64, 3), batch=4)
    ```

    Args:
        shape: `(height, width, channels)`.
        batch: images in the batch. Defaults to 1.
        sd: standard deviation of the random spectrum. Defaults to 0.01.
        decay_power: how fast the frequency scale decays. Defaults to 1.0.
        decorrelate: decorrelate colours (3 channels only). Defaults to True.
        init: start from this image or batch in [0, 1]. Defaults to None (noise).
        seed: seed of the random start. Defaults to 0.

    Returns:
        `([spectrum_variable], image_fn)`; the variable is `(N, 2, C, H, W//2+1)`
        (real and imaginary parts).

    Raises:
        ValueError: for a bad shape or initial image.
    """
    h, w, ch = _check_shape(shape)
    freqs = _freqs(h, w)
    scale = (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power) * np.sqrt(h * w)
    scale = scale.astype(np.float32)
    fh, fw = freqs.shape
    start = _init_batch(init, batch, (h, w, ch))
    if start is None:
        rng = np.random.default_rng(seed)
        value = (sd * rng.standard_normal((batch, 2, ch, fh, fw))).astype(np.float32)
    else:
        pre = _logit(start)
        if decorrelate and ch == 3:
            pre = pre @ np.linalg.inv(_COLOR).T  # undo `_decorrelate`
        spectrum = np.fft.rfft2(np.transpose(pre, (0, 3, 1, 2)) * 4.0) / scale
        value = np.stack([spectrum.real, spectrum.imag], axis=1).astype(np.float32)
    var = tf.Variable(value, name="spectrum")
    scale_t = tf.constant(scale.astype(np.complex64))

    def image_fn():
        spectrum = tf.complex(var[:, 0], var[:, 1]) * scale_t
        img = tf.signal.irfft2d(spectrum, fft_length=[h, w])  # (N, C, H, W)
        img = tf.transpose(img, [0, 2, 3, 1]) / 4.0
        if decorrelate:
            img = _decorrelate(img, ch)
        return tf.sigmoid(img)

    return [var], image_fn


PARAMS = {"pixel": pixel_image, "fourier": fourier_image}


def make_param(
    param: Any, shape: Sequence[int], batch: int = 1, init: Any = None, seed: int = 0
) -> Param:
    """Resolves a parameterisation: a name (`"pixel"`, `"fourier"`), a factory
    `fn(shape, batch=, init=, seed=)`, or a ready `(variables, image_fn)` pair.

    Raises:
        ValueError: for an unknown name.
    """
    if isinstance(param, str):
        if param not in PARAMS:
            raise ValueError(f"Unknown parameterisation {param!r}; use one of {sorted(PARAMS)}.")
        return PARAMS[param](shape, batch=batch, init=init, seed=seed)
    if isinstance(param, tuple) and len(param) == 2 and callable(param[1]):
        return list(param[0]), param[1]
    if callable(param):
        return param(shape, batch=batch, init=init, seed=seed)
    raise TypeError(
        f"param must be 'pixel', 'fourier', a factory or (variables, image_fn); got {param!r}."
    )


def image_of(param: Param) -> np.ndarray:
    """The current image batch of a parameterisation as float32 numpy."""
    return np.asarray(param[1](), np.float32)


ImageFn = Callable[[], tf.Tensor]
