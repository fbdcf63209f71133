"""Input images for synthesis: built-in sample photos and textures from scikit-image (offline)
and image files, returned as float32 RGB arrays in [0, 1], optionally resized.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

# name -> (scikit-image loader, what it is)
SAMPLES = {
    "astronaut": ("astronaut", "photo: Eileen Collins in a space suit"),
    "coffee": ("coffee", "photo: a cup of coffee"),
    "chelsea": ("chelsea", "photo: Chelsea the cat"),
    "rocket": ("rocket", "photo: a rocket on the launch pad"),
    "camera": ("camera", "photo: the cameraman (grayscale)"),
    "brick": ("brick", "texture: a brick wall (grayscale)"),
    "grass": ("grass", "texture: grass (grayscale)"),
    "gravel": ("gravel", "texture: gravel (grayscale)"),
    "colorwheel": ("colorwheel", "texture: a colour wheel"),
}
SAMPLE_NAMES = tuple(SAMPLES)


def _fit(img: np.ndarray, size: Any) -> np.ndarray:
    if size is None:
        return img
    if isinstance(size, (int, np.integer)):
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size is an int (square, centre-cropped) or (height, width); got {size}.")
    return resize_image(img, size)


def resize_image(img: np.ndarray, size: tuple, clip: bool = True) -> np.ndarray:
    """Resizes an `(H, W, C)` image to `(height, width)`: area averaging when shrinking
    (no aliasing), bilinear when enlarging; values clipped to [0, 1] when `clip`."""
    import cv2

    h, w = int(size[0]), int(size[1])
    if (h, w) == tuple(img.shape[:2]):
        return img.astype(np.float32)
    shrink = h < img.shape[0] and w < img.shape[1]
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if out.ndim == 2:
        out = out[..., None]
    return (np.clip(out, 0.0, 1.0) if clip else out).astype(np.float32)


def _to_rgb(img: np.ndarray, channels: int = 3) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == bool:
        img = img.astype(np.float32)
    else:
        img = img.astype(np.float32)
        if img.max() > 1.0:
            img = img / 255.0
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:
        img = img[..., :3]
    if channels == 3 and img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    elif channels == 1 and img.shape[-1] == 3:
        img = (img @ np.asarray([0.299, 0.587, 0.114], np.float32))[..., None]
    elif img.shape[-1] != channels:
        raise ValueError(
            f"Cannot turn an image with {img.shape[-1]} channels into {channels} channels."
        )
    return np.ascontiguousarray(img, dtype=np.float32)


def sample_image(name: str, size: Any = None, channels: int = 3) -> np.ndarray:
    """A built-in sample photo or texture (from scikit-image, no download).

    Example:

    ```python
    cat = sample_image("chelsea", size=128)  # (128, 128, 3) float32 in [0, 1]
    ```

    Args:
        name: one of `SAMPLE_NAMES` (astronaut, coffee, chelsea, rocket, camera, brick,
            grass, gravel, colorwheel).
        size: an int (centre-crop to a square, then resize) or `(height, width)`.
            Defaults to None (the original size).
        channels: 3 (grayscale samples are repeated) or 1. Defaults to 3.

    Returns:
        A float32 `(H, W, channels)` array in [0, 1].

    Raises:
        ValueError: for an unknown name.
        ImportError: if scikit-image is not installed.
    """
    if name not in SAMPLES:
        raise ValueError(f"Unknown sample image {name!r}; choose one of {', '.join(SAMPLE_NAMES)}.")
    try:
        import skimage.data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The built-in sample images come from scikit-image: pip install scikit-image"
        ) from error
    img = getattr(skimage.data, SAMPLES[name][0])()
    return _fit(_to_rgb(img, channels), size)


def load_image(source: Any, size: Any = None, channels: int = 3) -> np.ndarray:
    """Loads an image file, a built-in sample by name, or converts an array.

    Args:
        source: a file path (PNG, JPEG, BMP...), a name from `SAMPLE_NAMES`, or an array
            (uint8 0..255 or float 0..1; grayscale or RGB).
        size: an int (centre-crop to a square, then resize) or `(height, width)`.
            Defaults to None (the original size).
        channels: 3 or 1. Defaults to 3.

    Returns:
        A float32 `(H, W, channels)` array in [0, 1].

    Raises:
        FileNotFoundError: for a path that does not exist (and is no sample name).
        ValueError: for a file that is not an image.
    """
    if isinstance(source, np.ndarray):
        return _fit(_to_rgb(source, channels), size)
    source = os.fspath(source)
    if source in SAMPLES and not os.path.exists(source):
        return sample_image(source, size, channels)
    if not os.path.exists(source):
        raise FileNotFoundError(
            f"No image file {source!r}; pass a path or a built-in sample name "
            f"({', '.join(SAMPLE_NAMES)})."
        )
    import cv2

    img = cv2.imread(source, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"Could not read {source!r} as an image (PNG, JPEG, BMP...).")
    if img.ndim == 3:
        img = img[..., [2, 1, 0, 3][: img.shape[-1]]] if img.shape[-1] == 4 else img[..., ::-1]
    if img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    return _fit(_to_rgb(img, channels), size)
