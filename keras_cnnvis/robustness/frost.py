"""Frost: the image seen through an iced-over window, `clip(a * x + b * frost)`, with a
procedural frost texture instead of the reference's six photographs.

The texture is drawn, not shipped: feather-like ice crystals (a stem with side branches
at about 60 degrees) drawn anti-aliased over a cloudy haze. It is calibrated to the
statistics of the reference photographs, measured once: a grey level around 0.64 on
average (0.47 to 0.82 from photograph to photograph), blue-tinted (mean RGB about 0.57,
0.66, 0.70) and a contrast (standard deviation) around 0.11, half of it in the haze.
As in the reference, each image gets a random crop of one of a few textures, at the
scale of the reference set (the photographs shrunk to 0.2 for 32 px images, 0.3 for
64 px, unscaled for 224 px: an image sees 160, 213 and 224 photograph pixels).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from keras_cnnvis.robustness._common import Geometry, like, plasma_fractal, to_rgb

# (weight of the image, weight of the frost).
FROST = {
    32: [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    64: [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
    224: [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
}
# How much the reference shrank its photographs for each reference size.
_PHOTO_SCALE = {32: 0.2, 64: 0.3, 224: 1.0}
_TEXTURES = 3  # textures per call (the reference picks one of five photographs)
_TINT = np.array([-0.07, 0.015, 0.06], np.float32)  # per-channel offsets from the grey level


def _crystals(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Ice crystals drawn on a `(height, width)` canvas in photograph pixels, in [0, 1].

    Each crystal is a stem 6-30 pixels long with pairs of side branches every 2-3.5
    pixels, at 45-70 degrees to the stem and shortening towards the tip.
    """
    count = max(1, int(height * width / 250))
    seeds = rng.uniform((0, 0), (width, height), size=(count, 2))
    theta = rng.uniform(0, 2 * math.pi, count)
    length = rng.uniform(6, 30, count)
    spacing = rng.uniform(2, 3.5, count)
    spread = rng.uniform(math.radians(45), math.radians(70), count)
    reach = rng.uniform(0.3, 0.55, count)
    level = rng.integers(0, 4, count)  # brightness class of each crystal
    stem = np.stack([np.cos(theta), np.sin(theta)], -1)
    tips = seeds + length[:, None] * stem
    t = spacing[:, None] * np.arange(1, int(30 / 2) + 1)  # (count, branch points)
    ok = t < length[:, None]
    bases = seeds[:, None] + t[..., None] * stem[:, None]
    arm = (length[:, None] - t) * reach[:, None]
    segs, levels = [np.stack([seeds, tips], 1)], [level]
    for side in (-1, 1):
        phi = theta + side * spread
        ends = bases + arm[..., None] * np.stack([np.cos(phi), np.sin(phi)], -1)[:, None]
        segs.append(np.stack([bases[ok], ends[ok]], 1))
        levels.append(np.broadcast_to(level[:, None], ok.shape)[ok])
    segs_all, levels_all = np.concatenate(segs), np.concatenate(levels)
    canvas = np.zeros((height, width), np.uint8)
    for k in range(4):
        pts = np.round(segs_all[levels_all == k] * 16).astype(np.int32)
        if len(pts):
            cv2.polylines(canvas, pts, False, int(110 + 48 * k), 1, cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def _standardised(a: np.ndarray) -> np.ndarray:
    return (a - a.mean()) / max(float(a.std()), 1e-6)


def frost_textures(
    rng: np.random.Generator, count: int, height: int, width: int, scale: float
) -> np.ndarray:
    """`count` frost textures `(count, height, width, 3)` in [0, 1].

    Args:
        rng: the random generator.
        count: how many textures.
        height: texture height in image pixels.
        width: texture width in image pixels.
        scale: image pixels per photograph pixel (crystals are 8-40 photograph pixels
            long, thin lines).
    """
    ph, pw = max(8, int(round(height / scale))), max(8, int(round(width / scale)))
    # The haze is smooth: drawn at a quarter of the resolution and enlarged.
    side = 1 << max(3, int(math.ceil(math.log2(max(ph, pw) / 4))))
    haze = plasma_fractal(rng, count, side, 2.0)[:, : -(-ph // 4), : -(-pw // 4)]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.empty((count, height, width, 3), np.float32)
    for i in range(count):
        detail = cv2.GaussianBlur(_crystals(rng, ph, pw), (0, 0), 0.5)
        grey = (
            rng.uniform(0.47, 0.82)
            + 0.07 * _standardised(cv2.resize(haze[i], (pw, ph), interpolation=cv2.INTER_LINEAR))
            + 0.08 * _standardised(detail)
        )
        grey = cv2.resize(grey.astype(np.float32), (width, height), interpolation=interp)
        out[i] = np.clip(grey[..., None] + _TINT, 0, 1)
    return out


def frost(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """`clip(a * x + b * frost)` with a random crop of a procedural frost texture."""
    a, b = geo.pick(FROST, severity)
    n, h, w, c = x.shape
    scale = _PHOTO_SCALE[geo.reference] * geo.scale
    th, tw = int(math.ceil(1.25 * h)), int(math.ceil(1.25 * w))
    bank = frost_textures(rng, _TEXTURES, th, tw, scale)
    which = rng.integers(0, _TEXTURES, n)
    tops = rng.integers(0, th - h + 1, n)
    lefts = rng.integers(0, tw - w + 1, n)
    layer = np.stack([bank[k, t : t + h, l : l + w] for k, t, l in zip(which, tops, lefts)])
    out = np.clip(np.float32(a) * to_rgb(x) + np.float32(b) * layer, 0, 1)
    return like(out, c)
