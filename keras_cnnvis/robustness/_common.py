"""Shared pieces of the corruptions: which reference generator's constants apply to an image
size, batched OpenCV filtering, Gaussian blur, clipped zoom, the line (motion) kernel, the
disk (defocus) kernel and the plasma fractal.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from keras_cnnvis._threads import one_blas_thread

REFERENCE_SIZES = (32, 64, 224)
# Image sides below this use the CIFAR-10-C constants, below the next the Tiny-ImageNet-C
# ones, from there on ImageNet-C's: the geometric midpoints of 32, 64 and 224 (the reference
# nearest on a log scale).
_BOUNDS = (math.sqrt(32 * 64), math.sqrt(64 * 224))
# OpenCV 5 takes at most 128 channels per call (OpenCV 4: 512).
_CV_CHANNELS = 128
# cv2.COLOR_RGB2GRAY's weights (ITU-R BT.601 luma).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Geometry:
    """An image size, the reference size whose constants apply, and the spatial scale.

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        reference: 32 (CIFAR-10-C), 64 (Tiny-ImageNet-C) or 224 (ImageNet-C).
    """

    height: int
    width: int
    reference: int

    @property
    def side(self) -> int:
        return min(self.height, self.width)

    @property
    def scale(self) -> float:
        """Image side over reference side: spatial constants (blur radii, ...) are multiplied
        by it, so they cover the same fraction of the image as in the reference set."""
        return self.side / self.reference

    def pick(self, table: dict, severity: int):
        """The constant of `severity` in a `{reference size: [5 constants]}` table."""
        return table[self.reference][severity - 1]

    def px(self, value: float) -> float:
        """A length in reference pixels, in pixels of this image."""
        return float(value) * self.scale

    @property
    def grid(self) -> tuple[int, int]:
        """The image's size in reference pixels: random fields (snow, spatter, elastic
        displacements) are drawn on this grid and resized to the image, so their
        statistics are the reference set's at any image size."""
        return (
            max(1, int(round(self.height / self.scale))),
            max(1, int(round(self.width / self.scale))),
        )

    def to_image(self, fields: np.ndarray) -> np.ndarray:
        """Fields `(N, *grid)` drawn on the reference grid, resized (bilinear) to the image
        `(N, H, W)`; unchanged at a reference size."""
        if fields.shape[1:] == (self.height, self.width):
            return fields
        size = (self.width, self.height)
        out = per_plane(
            fields[..., None].astype(np.float32),
            lambda p: cv2.resize(p, size, interpolation=cv2.INTER_LINEAR),
        )
        return out[..., 0]


def geometry(height: int, width: int) -> Geometry:
    """The `Geometry` of `height` x `width` images: the reference size nearest (on a log
    scale) to the shorter side."""
    side = min(int(height), int(width))
    reference = 32 if side < _BOUNDS[0] else 64 if side < _BOUNDS[1] else 224
    return Geometry(int(height), int(width), reference)


def per_plane(
    x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], stack: bool | None = None
) -> np.ndarray:
    """Applies an OpenCV function of one `(H, W, K)` image to every channel of every image.

    Without `stack`, one call per image (`K = C`). With `stack`, the batch's planes are
    stacked as channels (at most 128 per call), so few calls filter the whole batch:
    faster for single planes or when `fn` makes many OpenCV calls per image, slower
    otherwise (two transposes). By default (None) planes are stacked for C = 1. `fn` must
    treat channels independently and may change H and W.
    """
    n, h, w, c = x.shape
    if not (c == 1 if stack is None else stack):
        outs = [fn(np.ascontiguousarray(image)) for image in x]
        return np.stack([o.reshape(o.shape[0], o.shape[1], c) for o in outs])
    planes = x.transpose(1, 2, 0, 3).reshape(h, w, n * c)
    outs = []
    for start in range(0, n * c, _CV_CHANNELS):
        out = fn(np.ascontiguousarray(planes[:, :, start : start + _CV_CHANNELS]))
        outs.append(out.reshape(out.shape[0], out.shape[1], -1))
    out = np.concatenate(outs, axis=2)
    return np.ascontiguousarray(out.reshape(out.shape[0], out.shape[1], n, c).transpose(2, 0, 1, 3))


def separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Applies a linear map along the height (`rows`, `(H', H)`) and the width (`cols`,
    `(W', W)`) of every plane of `(N, H, W, C)`: one matrix product per axis."""
    with one_blas_thread():
        out = np.tensordot(rows.astype(x.dtype), x, axes=([1], [1]))  # (H', N, W, C)
        out = np.tensordot(cols.astype(x.dtype), out, axes=([1], [2]))  # (W', H', N, C)
    return np.ascontiguousarray(out.transpose(2, 1, 0, 3))


@functools.lru_cache(maxsize=32)
def _gaussian_matrix(n: int, sigma: float, radius: int, border: int) -> np.ndarray:
    """The 1-D Gaussian filter of `n` samples as an `(n, n)` matrix (OpenCV's border)."""
    eye = np.eye(n, dtype=np.float32)
    return cv2.GaussianBlur(eye, (1, 2 * radius + 1), sigma, sigmaY=sigma, borderType=border)


def gaussian(
    x: np.ndarray, sigma: float, border: int = cv2.BORDER_REPLICATE, truncate: float = 4.0
) -> np.ndarray:
    """Gaussian blur of every plane of `(N, H, W, C)`, as scikit-image's `gaussian`.

    The kernel spans `truncate` standard deviations like scipy's; the default border is
    scikit-image's (`"nearest"`: replicate). `cv2.BORDER_REFLECT` is scipy's `"reflect"`.
    Kernels wider than a third of the image run as matrix products (the same filter).
    """
    if sigma <= 0:
        return x.copy()
    r = int(truncate * sigma + 0.5)
    h, w = x.shape[1:3]
    if 2 * r + 1 > min(h, w) / 3:
        rows = _gaussian_matrix(h, float(sigma), r, border)
        cols = _gaussian_matrix(w, float(sigma), r, border)
        return separable(x, rows, cols)
    k = (2 * r + 1, 2 * r + 1)
    return per_plane(x, lambda p: cv2.GaussianBlur(p, k, sigma, sigmaY=sigma, borderType=border))


def to_rgb(x: np.ndarray) -> np.ndarray:
    """Grayscale `(N, H, W, 1)` as RGB (colour corruptions run on RGB)."""
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma `(N, H, W, 1)` of RGB `(N, H, W, 3)` (OpenCV's RGB2GRAY weights)."""
    r, g, b = (rgb[..., i : i + 1] for i in range(3))
    return r * LUMA[0] + g * LUMA[1] + b * LUMA[2]


def channel_max(x: np.ndarray) -> np.ndarray:
    """The max over the channels, keeping the axis (faster than a reduction over 3)."""
    out = x[..., :1].copy()
    for i in range(1, x.shape[-1]):
        np.maximum(out, x[..., i : i + 1], out=out)
    return out


def channel_min(x: np.ndarray) -> np.ndarray:
    """The min over the channels, keeping the axis."""
    out = x[..., :1].copy()
    for i in range(1, x.shape[-1]):
        np.minimum(out, x[..., i : i + 1], out=out)
    return out


def like(rgb: np.ndarray, channels: int) -> np.ndarray:
    """Back to the input's channels: RGB to luma (BT.601) for a grayscale input."""
    return luma(rgb).astype(np.float32) if channels == 1 else rgb


def _zoom_axis(length: int, factor: float) -> tuple[float, float]:
    """Affine map (alpha, beta) from output index to source coordinate of a clipped zoom
    along one axis: crop the centre `ceil(length / factor)` pixels, zoom them by `factor`
    with corner-aligned linear interpolation (scipy's `zoom`), keep the centre `length`."""
    crop = int(math.ceil(length / factor))
    top = (length - crop) // 2
    zoomed = int(round(crop * factor))
    trim = (zoomed - length) // 2
    alpha = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    return alpha, top + trim * alpha


def clipped_zoom(planes: np.ndarray, factor: float) -> np.ndarray:
    """Zooms `(H, W, K)` planes (K <= 128) about their centre by `factor` >= 1, keeping
    the size: the reference generators' `clipped_zoom` in one OpenCV warp."""
    h, w = planes.shape[:2]
    ay, by = _zoom_axis(h, factor)
    ax, bx = _zoom_axis(w, factor)
    m = np.array([[ax, 0.0, bx], [0.0, ay, by]], np.float64)
    out = cv2.warpAffine(
        planes,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(h, w, -1)


def motion_kernel(radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's motion-blur kernel as a 2-D correlation kernel.

    ImageMagick's `-motion-blur radius x sigma + angle` averages `2 * ceil(radius) + 1`
    pixels along a line from each pixel in the direction `angle` (degrees; x to the
    right, y down), weighted by a one-sided Gaussian `exp(-i^2 / (2 sigma^2))` of the
    distance `i`; the taps are rounded to whole pixels.
    """
    width = 2 * int(math.ceil(radius)) + 1 if radius > 0 else 3
    sigma = max(float(sigma), 1e-12)
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i**2) / (2 * sigma**2))
    weights /= weights.sum()
    theta = math.radians(angle)
    dx = np.ceil(i * math.cos(theta) - 0.5).astype(int)
    dy = np.ceil(i * math.sin(theta) - 0.5).astype(int)
    r = int(max(np.abs(dx).max(), np.abs(dy).max()))
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    np.add.at(kernel, (r + dy, r + dx), weights.astype(np.float32))
    return kernel


def motion_blur_planes(planes: np.ndarray, radius: float, sigma: float, angle: float):
    """Motion blur of one image's `(H, W, K)` planes (edge pixels repeat outside)."""
    kernel = motion_kernel(radius, sigma, angle)
    out = cv2.filter2D(planes, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return out.reshape(planes.shape)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The defocus kernel: a normalised disk of `radius` on a grid of at least 17 x 17,
    smoothed by a small Gaussian of `alias_blur` (3 x 3; 5 x 5 past radius 8)."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 9), (3, 3)
    else:
        r = int(math.ceil(radius))
        grid, ksize = np.arange(-r, r + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    kernel = cv2.GaussianBlur(disk, ksize, max(float(alias_blur), 1e-6))
    # Only the disk and the blur's reach are non-zero: crop the rest (same filter, faster).
    c = len(grid) // 2
    reach = min(c, int(math.floor(radius)) + ksize[0] // 2)
    return np.ascontiguousarray(kernel[c - reach : c + reach + 1, c - reach : c + reach + 1])


def plasma_fractal(
    rng: np.random.Generator, n: int, size: int, decay: float, dtype=np.float32
) -> np.ndarray:
    """`n` diamond-square height maps `(n, size, size)` in [0, 1] (size a power of two).

    The fog texture of the reference generators: each halving of the step adds random
    offsets `wibble * U(-wibble, wibble)` whose scale `wibble` shrinks by `decay`.
    """
    m = np.zeros((n, size, size), np.float64)
    step, wibble = size, 100.0

    def wibbled(a):
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = m[:, 0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        m[:, half:size:step, half:size:step] = wibbled(square)
        centres = m[:, half:size:step, half:size:step]
        corners = m[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        m[:, 0:size:step, half:size:step] = wibbled(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        m[:, half:size:step, 0:size:step] = wibbled(top)
        step //= 2
        wibble /= decay
    m -= m.min(axis=(1, 2), keepdims=True)
    m /= np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)
    return m.astype(dtype)
