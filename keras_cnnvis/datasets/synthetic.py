"""The built-in synthetic dataset: coloured shapes on textured backgrounds with object masks,
generated deterministically and offline (float32 channels-last images in [0, 1]).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from keras_cnnvis.datasets._checks import check_int

__all__ = ["SHAPE_CLASSES", "shapes"]

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring")

# Shape geometry. Every class is scaled to the area of a circle of radius `r`, so the area of
# the object says nothing about its class; all classes share one placement margin.
_SUPERSAMPLE = 4
_SUBPIXEL_BITS = 4
_RING_INNER = 0.55  # inner radius / outer radius
_CROSS_WIDTH = 0.3  # half arm width / half arm length
_EXTENT = 1.56  # largest circumradius over all classes (the triangle's), in units of r
_RADIUS_RANGE = (0.12, 0.20)  # r as a fraction of the image size
_MIN_CONTRAST = 0.5  # RGB distance between the shape colour and the background under it
_CHUNK = 512  # images generated per vectorised step, bounds peak memory


def _resolve_classes(classes) -> tuple[str, ...]:
    if classes is None:
        return SHAPE_CLASSES
    if isinstance(classes, str):
        raise ValueError(
            f"`classes` must be a list of shape names, got the string {classes!r}; "
            f"write classes=[{classes!r}]."
        )
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise ValueError(
            f"Unknown shape class(es) {unknown}; valid classes are {list(SHAPE_CLASSES)}."
        )
    if not classes:
        raise ValueError(
            f"`classes` is empty; pick at least one of {list(SHAPE_CLASSES)} "
            "or pass None for all."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"`classes` has duplicates: {list(classes)}; list each class once.")
    return classes


def _regular_polygon(k: int, radius: float, angle: float) -> np.ndarray:
    t = angle + np.arange(k) * (2.0 * np.pi / k)
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _outline(name: str, r: float, angle: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns the outer polygon (and the hole, for rings) centred on 0, in pixels."""
    if name == "circle":
        return _regular_polygon(96, r, 0.0), None
    if name == "ring":
        outer = r / np.sqrt(1.0 - _RING_INNER**2)
        return _regular_polygon(96, outer, 0.0), _regular_polygon(96, _RING_INNER * outer, 0.0)
    if name == "square":
        return _regular_polygon(4, r * np.sqrt(np.pi / 2.0), angle + np.pi / 4.0), None
    if name == "triangle":
        circumradius = r * np.sqrt(4.0 * np.pi / (3.0 * np.sqrt(3.0)))
        return _regular_polygon(3, circumradius, angle - np.pi / 2.0), None
    # cross: a plus sign; area 8ht - 4t^2 with t = _CROSS_WIDTH * h.
    k = _CROSS_WIDTH
    h = r * np.sqrt(np.pi / (8.0 * k - 4.0 * k * k))
    t = k * h
    pts = np.array(
        [
            (t, h),
            (t, t),
            (h, t),
            (h, -t),
            (t, -t),
            (t, -h),
            (-t, -h),
            (-t, -t),
            (-h, -t),
            (-h, t),
            (-t, t),
            (-t, h),
        ]
    )
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]), None


def _coverage(name: str, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of one shape, by supersampled polygon filling."""
    s = _SUPERSAMPLE
    canvas = np.zeros((size * s, size * s), np.uint8)
    outer, hole = _outline(name, r, angle)
    scale = float(1 << _SUBPIXEL_BITS)

    def fixed(poly):
        # Continuous pixel coordinates -> supersampled pixel-centre coordinates, fixed point.
        pts = (poly + (cx, cy)) * s - 0.5
        return [np.round(pts * scale).astype(np.int32)]

    cv2.fillPoly(canvas, fixed(outer), 255, cv2.LINE_8, _SUBPIXEL_BITS)
    if hole is not None:
        cv2.fillPoly(canvas, fixed(hole), 0, cv2.LINE_8, _SUBPIXEL_BITS)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0, 1)


def _backgrounds(rng: np.random.Generator, m: int, size: int) -> np.ndarray:
    """Smooth colour gradients + soft colour blobs + faint stripes, shape (m, size, size, 3).

    Every term is separable in y and x (a plain colour, two linear ramps, Gaussian blobs, and
    stripes written as sin(a + b) = sin a cos b + cos a sin b), so the whole background is one
    batched product of (m, size, terms) row factors and (m, terms, size * 3) column factors.
    """
    u = (np.arange(size) + 0.5) / size - 0.5  # pixel centres in [-0.5, 0.5)
    one = np.ones(size)
    rows, cols = (
        [],
        [],
    )  # (m, size) factors over y; (m, size, 3) factors over x and colour

    base = _hsv_to_rgb(rng.random(m), rng.uniform(0.0, 0.6, m), rng.uniform(0.25, 0.8, m))
    rows.append(np.broadcast_to(one, (m, size)))
    cols.append(one[None, :, None] * base[:, None, :])

    # Linear colour ramp along a random direction, +-0.2 per channel at the borders.
    phi = rng.uniform(0.0, 2.0 * np.pi, m)[:, None]
    ramp = rng.uniform(-0.2, 0.2, (m, 1, 3)) * 2.0
    rows += [np.broadcast_to(one, (m, size)), np.sin(phi) * u]
    cols += [
        np.cos(phi)[..., None] * u[None, :, None] * ramp,
        one[None, :, None] * ramp,
    ]

    # Soft colour blobs.
    for _ in range(3):
        cy, cx = rng.uniform(-0.5, 0.5, (2, m, 1))
        sigma = rng.uniform(0.08, 0.3, (m, 1))
        amp = rng.uniform(-0.15, 0.15, (m, 1, 3))
        rows.append(np.exp(-((u - cy) ** 2) / (2.0 * sigma**2)))
        cols.append(np.exp(-((u - cx) ** 2) / (2.0 * sigma**2))[..., None] * amp)

    # Faint stripes of random orientation, frequency (3-9 per image) and colour.
    theta = rng.uniform(0.0, np.pi, (m, 1))
    freq = 2.0 * np.pi * rng.uniform(3.0, 9.0, (m, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (m, 1))
    amp = rng.uniform(-1.0, 1.0, (m, 1, 3)) * rng.uniform(0.02, 0.07, (m, 1, 1))
    along_x = (freq * np.cos(theta) * u + phase)[..., None]
    along_y = freq * np.sin(theta) * u
    rows += [np.cos(along_y), np.sin(along_y)]
    cols += [np.sin(along_x) * amp, np.cos(along_x) * amp]

    row_factors = np.stack(rows, axis=2).astype(np.float32)  # (m, size, terms)
    col_factors = np.stack(cols, axis=1).astype(np.float32)  # (m, terms, size, 3)
    out = row_factors @ col_factors.reshape(m, len(cols), size * 3)
    return out.reshape(m, size, size, 3)


def _pick_colours(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """Random vivid colours at least `_MIN_CONTRAST` away from `under` (m, 3), independent of
    class; the corner of the RGB cube farthest from `under` is the fallback."""
    m, tries = len(under), 16
    candidates = _hsv_to_rgb(
        rng.random((m, tries)),
        rng.uniform(0.3, 1.0, (m, tries)),
        rng.uniform(0.1, 1.0, (m, tries)),
    )
    farthest = (under < 0.5).astype(np.float64)[:, None, :]
    candidates = np.concatenate([candidates, farthest], axis=1)
    ok = np.linalg.norm(candidates - under[:, None, :], axis=-1) >= _MIN_CONTRAST
    first = np.argmax(ok, axis=1)
    return candidates[np.arange(m), first].astype(np.float32)


def shapes(
    n: int,
    size: int = 64,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generates coloured shapes on textured backgrounds, with a mask of each shape.

    Each image holds one shape (circle, square, triangle, cross or ring; see `SHAPE_CLASSES`)
    with random position, size, rotation and colour over a background of smooth colour
    gradients, soft blobs, faint stripes and pixel noise. Every class has the same area for the
    same size parameter, and colour, size and position are drawn independently of the class, so
    only the outline tells the classes apart. The shape colour is at least 0.5 (RGB distance)
    away from the background under it. `masks` marks the pixels that are at least half covered
    by the shape, so attribution maps can be scored on whether they look at the object.
    The same arguments always give the same arrays.

    Example:

    ```python
    images, labels, masks = shapes(2000, size=64, seed=0)
    names = [SHAPE_CLASSES[i] for i in labels[:5]]
    ```

    Args:
        n: number of images, at least 1.
        size: height and width in pixels, at least 16. Defaults to `64`.
        seed: seed of the random generator. Defaults to `0`.
        classes: names from `SHAPE_CLASSES` to generate, in label order; labels index into this
            list. Defaults to `None` (all of `SHAPE_CLASSES`).

    Returns:
        A tuple `(images, labels, masks)`: float32 images `(n, size, size, 3)` in [0, 1], int32
        labels `(n,)` with every class appearing `n // len(classes)` or one more times, in
        shuffled order, and bool masks `(n, size, size)`.

    Raises:
        ValueError: if `n` < 1, `size` < 16 or `classes` names an unknown or repeated class.
    """
    n = check_int(n, "n", 1, "Ask for at least one image, e.g. shapes(2000).")
    size = check_int(size, "size", 16, "Shapes need room to be recognisable; use size=64.")
    names = _resolve_classes(classes)
    rng = np.random.default_rng(seed)

    labels = rng.permutation(np.arange(n) % len(names)).astype(np.int32)
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        r = rng.uniform(*_RADIUS_RANGE, m) * size
        margin = _EXTENT * r + 1.0
        cx = margin + rng.random(m) * (size - 2.0 * margin)
        cy = margin + rng.random(m) * (size - 2.0 * margin)
        angle = rng.uniform(0.0, 2.0 * np.pi, m)
        alpha = np.stack(
            [
                _coverage(names[labels[start + i]], size, cx[i], cy[i], r[i], angle[i])
                for i in range(m)
            ]
        )
        chunk = _backgrounds(rng, m, size)
        flat = chunk.reshape(m, size * size, 3)
        weight = alpha.reshape(m, 1, size * size)
        under = (weight @ flat)[:, 0] / weight.sum(axis=2)
        colour = _pick_colours(rng, np.clip(under, 0.0, 1.0))
        # chunk += alpha * (colour - chunk), in place.
        shift = colour[:, None, None, :] - chunk
        shift *= alpha[..., None]
        chunk += shift
        noise = rng.standard_normal(chunk.shape, dtype=np.float32)
        noise *= rng.uniform(0.01, 0.04, (m, 1, 1, 1)).astype(np.float32)
        chunk += noise
        np.clip(chunk, 0.0, 1.0, out=images[start:stop])
        masks[start:stop] = alpha >= 0.5
    return images, labels, masks
