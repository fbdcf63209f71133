"""The weather corruptions of Hendrycks & Dietterich (2019): snow and fog, and spatter
(held out), on batches in [0, 1]. Frost is in `frost.py`, brightness in `digital.py`.

Random layers (snow flakes, liquid) are drawn on the reference grid (`Geometry.grid`)
with the reference's pixel constants and resized to the image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from keras_cnnvis.robustness._common import (
    Geometry,
    clipped_zoom,
    gaussian,
    like,
    luma,
    motion_blur_planes,
    per_plane,
    plasma_fractal,
    to_rgb,
)

# (flake mean, flake std, flake zoom, threshold, motion radius, motion sigma, image weight).
SNOW = {
    32: [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ],
    64: [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.8),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
    ],
    224: [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ],
}
# (fog strength, decay of the plasma fractal's detail).
FOG = {
    32: [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    64: [(0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
    224: [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)],
}
# (liquid mean, liquid std, liquid blur sigma, threshold, intensity or mud sigma, mud?).
SPATTER = {
    32: [
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ],
    64: [
        (0.62, 0.1, 0.7, 0.7, 0.6, 0),
        (0.65, 0.1, 0.8, 0.7, 0.6, 0),
        (0.65, 0.3, 1, 0.69, 0.6, 0),
        (0.65, 0.1, 0.7, 0.68, 0.6, 1),
        (0.65, 0.1, 0.5, 0.67, 0.6, 1),
    ],
    224: [
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ],
}
WATER = np.array([175, 238, 238], np.float32) / 255  # pale turquoise (RGB)
MUD = np.array([63, 42, 20], np.float32) / 255  # brown (RGB)


def snow_layer(rng: np.random.Generator, n: int, severity: int, geo: Geometry) -> np.ndarray:
    """`n` snow layers `(n, H, W)`: thresholded zoomed noise, motion-blurred downwards."""
    mean, std, zoom, threshold, radius, sigma, _ = geo.pick(SNOW, severity)
    gh, gw = geo.grid
    flakes = rng.normal(mean, std, size=(n, gh, gw, 1)).astype(np.float32)
    flakes = per_plane(flakes, lambda p: clipped_zoom(p, zoom))[..., 0]
    flakes[flakes < threshold] = 0
    flakes = np.clip(flakes, 0, 1)
    angles = rng.uniform(-135, -45, size=n)
    for i, angle in enumerate(angles):
        flakes[i] = motion_blur_planes(flakes[i], radius, sigma, angle)
    return geo.to_image(flakes)


def snow(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Falling snow: the image paled towards white, plus streaks of flakes in two layers
    (the second the first turned by 180 degrees)."""
    weight = geo.pick(SNOW, severity)[-1]
    rgb = to_rgb(x)
    bright = np.maximum(rgb, luma(rgb) * np.float32(1.5) + np.float32(0.5))
    out = np.float32(weight) * rgb + np.float32(1 - weight) * bright
    layer = snow_layer(rng, len(x), severity, geo)[..., None]
    out += layer + np.rot90(layer, k=2, axes=(1, 2))
    return like(np.clip(out, 0, 1, out=out), x.shape[-1])


def fog(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Fog: a plasma fractal added, then the image rescaled by `max / (max + strength)` so
    its brightest pixel stays at most as bright as before."""
    strength, decay = geo.pick(FOG, severity)
    n, h, w, _ = x.shape
    size = 1 << max(1, int(math.ceil(math.log2(max(h, w)))))
    cloud = plasma_fractal(rng, n, size, decay)[:, :h, :w, None]
    top = x.max(axis=(1, 2, 3), keepdims=True)
    out = (x + np.float32(strength) * cloud) * (top / (top + np.float32(strength)))
    return np.clip(out, 0, 1).astype(np.float32)


def _water_mask(liquid: np.ndarray) -> np.ndarray:
    """The reference's water-drop shading of one liquid layer (reference grid, in [0, 1]):
    drop edges (Canny), a distance transform capped at 20 pixels, equalised and embossed."""
    drops = (np.clip(liquid, 0, 1) * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(drops, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
    dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = drops.astype(np.float32) * dist
    top = float(m.max())
    return m / top if top > 0 else m


def spatter(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Splashes: water drops (severities 1-3) or mud (4-5) over the lens."""
    mean, std, sigma, threshold, amount, mud = geo.pick(SPATTER, severity)
    n = len(x)
    gh, gw = geo.grid
    liquid = rng.normal(mean, std, size=(n, gh, gw, 1)).astype(np.float32)
    liquid = gaussian(liquid, sigma)[..., 0]
    liquid[liquid < threshold] = 0
    rgb = to_rgb(x)
    if not mud:
        m = np.stack([_water_mask(layer) for layer in liquid]) * np.float32(amount)
        out = rgb + geo.to_image(m)[..., None] * WATER
    else:
        m = gaussian((liquid > threshold).astype(np.float32)[..., None], amount)[..., 0]
        m[m < 0.8] = 0
        m = geo.to_image(m)[..., None]
        out = rgb * (1 - m) + MUD * m
    return like(np.clip(out, 0, 1).astype(np.float32), x.shape[-1])
