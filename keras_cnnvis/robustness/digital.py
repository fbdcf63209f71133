"""The digital corruptions of Hendrycks & Dietterich (2019): contrast, elastic transform,
pixelate and JPEG compression, and saturate (held out); plus brightness (a weather
corruption in the paper), which shares saturate's HSV arithmetic. Batches in [0, 1].
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from keras_cnnvis.robustness._common import (
    Geometry,
    channel_max,
    channel_min,
    gaussian,
    like,
    separable,
    to_rgb,
)

CONTRAST = {
    32: [0.75, 0.5, 0.4, 0.3, 0.15],
    64: [0.4, 0.3, 0.2, 0.1, 0.05],
    224: [0.4, 0.3, 0.2, 0.1, 0.05],
}
# Added to the HSV value.
BRIGHTNESS = {
    32: [0.05, 0.1, 0.15, 0.2, 0.3],
    64: [0.1, 0.2, 0.3, 0.4, 0.5],
    224: [0.1, 0.2, 0.3, 0.4, 0.5],
}
# HSV saturation s -> clip(s * a + b).
SATURATE = {
    32: [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
    64: [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
    224: [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
}
JPEG_QUALITY = {
    32: [80, 65, 58, 50, 40],
    64: [65, 58, 50, 40, 25],
    224: [25, 18, 15, 10, 7],
}
# Side of the pixelated image as a fraction of the image's.
PIXELATE = {
    32: [0.95, 0.9, 0.85, 0.75, 0.65],
    64: [0.9, 0.8, 0.7, 0.6, 0.5],
    224: [0.6, 0.5, 0.4, 0.3, 0.25],
}
# (displacement amplitude, displacement smoothness sigma, affine jitter) in units of
# _ELASTIC_UNIT reference pixels. ImageNet-C's unit is 244 where 224 was meant; its
# authors kept it ("ultimately nothing is incorrect"), and so do we.
ELASTIC = {
    32: [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
    64: [(0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)],
    224: [
        (2, 0.7, 0.1),
        (2, 0.08, 0.2),
        (0.05, 0.01, 0.02),
        (0.07, 0.01, 0.02),
        (0.12, 0.01, 0.02),
    ],
}
_ELASTIC_UNIT = {32: 32, 64: 64, 224: 244}


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """`clip((x - mean) * c + mean)` with each image's per-channel means."""
    c = np.float32(geo.pick(CONTRAST, severity))
    means = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1)


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """HSV value `v -> min(v + c, 1)`, hue and saturation kept.

    In HSV every channel is `v * (1 - s * t)` with `t` set by the hue, so a new value
    scales the pixel by `v' / v` (a black pixel becomes grey `v'`).
    """
    c = np.float32(geo.pick(BRIGHTNESS, severity))
    v = channel_max(x)
    v_new = np.minimum(v + c, 1)
    ratio = np.divide(v_new, v, out=np.zeros_like(v), where=v > 0)
    return np.where(v > 0, x * ratio, v_new).astype(np.float32)


def saturate(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """HSV saturation `s -> clip(s * a + b)`, hue and value kept (scikit-image's HSV).

    With `v` the max, `d` the spread (max - min) and `s = d / v`, a channel at `v - u`
    becomes `v - u * s' * v / d`. A grey pixel (hue 0, red, in scikit-image) becomes
    `(v, v (1 - s'), v (1 - s'))`. Grayscale input runs as RGB and returns luma.
    """
    a, b = geo.pick(SATURATE, severity)
    rgb = to_rgb(x)
    v = channel_max(rgb)
    spread = v - channel_min(rgb)
    s = np.divide(spread, v, out=np.zeros_like(v), where=v > 0)
    s_new = np.clip(s * np.float32(a) + np.float32(b), 0, 1)
    scale = np.divide(s_new * v, spread, out=np.zeros_like(v), where=spread > 0)
    out = v - (v - rgb) * scale
    if b > 0:  # grey pixels gain saturation towards red (hue 0)
        out -= ((spread == 0) * v * s_new) * np.array([0, 1, 1], np.float32)
    return like(np.clip(out, 0, 1).astype(np.float32), x.shape[-1])


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """A JPEG round trip at the reference quality (the 8-bit image, 4:2:0 chroma)."""
    quality = int(geo.pick(JPEG_QUALITY, severity))
    pixels = np.round(x * 255).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    out = np.empty(x.shape, np.float32)
    for i, image in enumerate(pixels):
        bgr = image[..., 0] if image.shape[-1] == 1 else np.ascontiguousarray(image[..., ::-1])
        ok, buffer = cv2.imencode(".jpg", bgr, params)
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
            raise RuntimeError("OpenCV could not encode the image as JPEG.")
        decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        decoded = decoded[..., None] if decoded.ndim == 2 else decoded[..., ::-1]
        out[i] = decoded.astype(np.float32) / 255
    return out


@functools.lru_cache(maxsize=64)
def box_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Pillow's BOX resampling along one axis as a `(n_out, n_in)` matrix.

    Output pixel `i` averages the input pixels whose centres fall within its footprint
    `[(i + 0.5) * scale - support, ... + support)` (`scale = n_in / n_out`, support half a
    pixel or half the scale); upsampling repeats pixels.
    """
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        j = np.arange(lo, hi)
        t = (j - centre + 0.5) / filter_scale
        m[i, j] = (t > -0.5) & (t <= 0.5)
        m[i] /= max(m[i].sum(), 1.0)
    return m


@functools.lru_cache(maxsize=64)
def _pixelate_matrix(n: int, fraction: float) -> np.ndarray:
    small = max(1, int(n * fraction))
    return (box_resize_matrix(small, n) @ box_resize_matrix(n, small)).astype(np.float32)


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Down to `int(side * c)` and back up with Pillow's BOX filter (blocky averages)."""
    fraction = geo.pick(PIXELATE, severity)
    _, h, w, _ = x.shape
    out = separable(x, _pixelate_matrix(h, fraction), _pixelate_matrix(w, fraction))
    return np.clip(out, 0, 1).astype(np.float32)


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """A random affine warp, then a smooth random displacement field (Simard et al. 2003).

    The affine moves three points at a third of the image around the centre by up to
    the jitter; the displacements are uniform noise smoothed by a Gaussian (reflected
    edges, truncated at 3 sigma) and scaled by the amplitude, drawn on the reference grid.
    """
    amplitude, smooth, jitter = (
        v * _ELASTIC_UNIT[geo.reference] for v in geo.pick(ELASTIC, severity)
    )
    n, h, w, c = x.shape
    cx, cy, sq = w // 2, h // 2, min(h, w) // 3
    src = np.float32([[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]])
    moves = rng.uniform(-1, 1, size=(n, 3, 2)) * geo.px(jitter)
    gh, gw = geo.grid
    noise = rng.uniform(-1, 1, size=(2 * n, gh, gw, 1)).astype(np.float32)
    fields = gaussian(noise, smooth, border=cv2.BORDER_REFLECT, truncate=3.0)[..., 0]
    fields = geo.to_image(fields * np.float32(amplitude)) * np.float32(geo.scale)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = np.empty_like(x)
    for i in range(n):
        m = cv2.getAffineTransform(src, (src + moves[i]).astype(np.float32))
        warped = cv2.warpAffine(x[i], m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        out[i] = cv2.remap(
            warped.reshape(h, w, c),
            xs + fields[2 * i],
            ys + fields[2 * i + 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        ).reshape(h, w, c)
    return np.clip(out, 0, 1)
