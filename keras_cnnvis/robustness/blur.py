"""The blur corruptions of Hendrycks & Dietterich (2019): defocus, glass, motion and zoom
blur, and Gaussian blur (held out), on batches in [0, 1].

Radii and standard deviations are in reference pixels and scale with the image (see
`Geometry.px`); zoom factors are relative and do not.
"""

from __future__ import annotations

import cv2
import numpy as np

from keras_cnnvis.robustness._common import (
    Geometry,
    clipped_zoom,
    disk_kernel,
    gaussian,
    motion_blur_planes,
    per_plane,
)

# (disk radius, anti-alias sigma of the disk kernel).
DEFOCUS_BLUR = {
    32: [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    64: [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
    224: [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
}
# (Gaussian sigma, largest pixel displacement, shuffling passes).
GLASS_BLUR = {
    32: [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    64: [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
    224: [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
}
# ImageMagick motion blur (radius, sigma); the angle is uniform in [-45, 45] degrees.
MOTION_BLUR = {
    32: [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    64: [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
    224: [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
}
# Zoom factors np.arange(1, stop, step) averaged with the image (the arange end points,
# float quirks included, are the reference's).
ZOOM_BLUR = {
    32: [(1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)],
    64: [(1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)],
    224: [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)],
}
# Gaussian sigma.
GAUSSIAN_BLUR = {
    32: [0.4, 0.6, 0.7, 0.8, 1.0],
    64: [0.5, 0.75, 1.0, 1.25, 1.5],
    224: [1.0, 2.0, 3.0, 4.0, 6.0],
}


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Convolution with an anti-aliased disk (the out-of-focus blur of a round aperture)."""
    radius, alias = geo.pick(DEFOCUS_BLUR, severity)
    kernel = disk_kernel(geo.px(radius), geo.px(alias))
    out = per_plane(x, lambda p: cv2.filter2D(p, -1, kernel, borderType=cv2.BORDER_REFLECT_101))
    return np.clip(out, 0, 1)


def glass_sources(
    height: int, width: int, delta: int, passes: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Where each pixel of the glass-blur shuffle takes its value from: `(n, height *
    width)` flat source indices.

    The reference visits the pixels from the bottom-right to the top-left (rows `H - d`
    down to `d + 1`, likewise columns) and, at each, runs `x[h, w], x[h', w'] = x[h', w'],
    x[h, w]` with a neighbour at an offset drawn from `[-d, d)` in each direction. On an
    RGB array `x[h, w]` is a view, so this copies the neighbour into the pixel rather
    than swapping the two: the published sets were made that way, and so is this.

    A visit only interacts with visits within `d` rows and columns of it, so all visits on
    one wavefront `(d + 1) * row + column` are independent and run together, in the
    reference's order: the same result in about `(d + 2) H` vectorised steps instead of
    `H * W` Python steps.
    """
    size = height * width
    index = np.int32 if n * size < 2**31 else np.int64
    source = np.arange(n * size, dtype=index)  # flat over the batch
    rows_, cols_ = np.arange(height - delta, delta, -1), np.arange(width - delta, delta, -1)
    base = (np.arange(n, dtype=index) * size)[None, :]
    if len(rows_) == 0 or len(cols_) == 0:
        return source.reshape(n, size).astype(np.int64) - base.T
    hh, ww = np.meshgrid(rows_, cols_, indexing="ij")
    pos = (hh * width + ww).ravel()
    wave = ((delta + 1) * (rows_[0] - hh) + (cols_[0] - ww)).ravel()
    order = np.argsort(wave, kind="stable")
    bounds = np.flatnonzero(np.diff(wave[order])) + 1
    spans = list(zip(np.r_[0, bounds], np.r_[bounds, len(order)]))
    here = np.ascontiguousarray(pos[order].astype(index)[:, None] + base)  # (visits, n)
    for _ in range(int(passes)):
        # One (dx, dy) per visit and image, in visiting order (row by row, right to left).
        off = rng.integers(-delta, delta, size=(n, len(pos), 2))
        there = here + (off[..., 1] * width + off[..., 0]).T[order].astype(index)
        for start, stop in spans:
            source[here[start:stop].ravel()] = source[there[start:stop].ravel()]
    return source.reshape(n, size).astype(np.int64) - base.T


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Blur, let pixels take their neighbours' values (frosted glass), blur again."""
    sigma, delta, passes = geo.pick(GLASS_BLUR, severity)
    sigma = geo.px(sigma)
    delta = max(1, int(round(geo.px(delta))))
    n, h, w, c = x.shape
    blurred = gaussian(x, sigma)
    flat = glass_sources(h, w, delta, passes, n, rng) + (np.arange(n) * (h * w))[:, None]
    shuffled = np.take(blurred.reshape(n * h * w, c), flat.ravel(), axis=0).reshape(x.shape)
    return np.clip(gaussian(shuffled, sigma), 0, 1)


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """ImageMagick's motion blur (a one-sided Gaussian line kernel) at a random angle."""
    radius, sigma = geo.pick(MOTION_BLUR, severity)
    radius, sigma = geo.px(radius), geo.px(sigma)
    angles = rng.uniform(-45, 45, size=len(x))
    out = np.empty_like(x)
    for i, angle in enumerate(angles):
        out[i] = motion_blur_planes(np.ascontiguousarray(x[i]), radius, sigma, angle)
    return np.clip(out, 0, 1)


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """The mean of the image and its zooms about the centre (moving towards the camera)."""
    stop, step = geo.pick(ZOOM_BLUR, severity)
    factors = np.arange(1, stop, step)

    def average(planes):
        acc = planes.astype(np.float32).copy()
        for f in factors:
            acc += clipped_zoom(planes, float(f))
        return acc / np.float32(len(factors) + 1)

    return np.clip(per_plane(x, average, stack=True), 0, 1)


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Gaussian blur (scikit-image's `gaussian`, edges repeated)."""
    return np.clip(gaussian(x, geo.px(geo.pick(GAUSSIAN_BLUR, severity))), 0, 1)
