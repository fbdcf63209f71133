"""Random image transforms applied inside the render loop (jitter, pad, scale, rotate), each
a closure `fn(images, rng) -> images` joined by `compose`; they make visualisations robust.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import tensorflow as tf

Transform = Callable[[tf.Tensor, tf.random.Generator], tf.Tensor]


def _hw(images: tf.Tensor):
    static = images.shape[1:3]
    if static.is_fully_defined():
        return int(static[0]), int(static[1])
    shape = tf.shape(images)
    return shape[1], shape[2]


def jitter(d: int) -> Transform:
    """Shifts the image by up to `d` pixels each way (reflect-padded, same size).

    Example:

    ```python
    moved = jitter(4)(images, tf.random.Generator.from_seed(0))
    ```

    Args:
        d: the largest shift in pixels (0 = no-op).

    Returns:
        A transform.
    """
    d = int(d)
    if d < 0:
        raise ValueError(f"jitter needs d >= 0; got {d}.")

    def fn(images, rng):
        if d == 0:
            return images
        h, w = _hw(images)
        padded = tf.pad(images, [[0, 0], [d, d], [d, d], [0, 0]], mode="REFLECT")
        oy, ox = tf.unstack(rng.uniform([2], 0, 2 * d + 1, dtype=tf.int32))
        return padded[:, oy : oy + h, ox : ox + w, :]

    return fn


def pad(n: int, mode: str = "constant", value: float = 0.5) -> Transform:
    """Pads `n` pixels on each side (so edges are not special); the image grows by `2n`.

    Args:
        n: pixels per side.
        mode: `"constant"`, `"reflect"` or `"symmetric"`. Defaults to `"constant"`.
        value: the constant's value. Defaults to 0.5 (mid-grey).

    Returns:
        A transform.
    """
    n = int(n)
    if mode.upper() not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f"pad mode must be constant, reflect or symmetric; got {mode!r}.")

    def fn(images, rng):
        paddings = [[0, 0], [n, n], [n, n], [0, 0]]
        if mode.upper() == "CONSTANT":
            return tf.pad(images, paddings, constant_values=value)
        return tf.pad(images, paddings, mode=mode.upper())

    return fn


def _affine(images, angle, factor):
    """Rotates by `angle` radians and zooms by `factor` about the centre (same size)."""
    h, w = _hw(images)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
    cos, sin = tf.cos(angle) / factor, tf.sin(angle) / factor
    # Maps output pixel (x, y) to input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    row = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])
    n = tf.shape(images)[0]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.tile(row[None], [n, 1]),
        output_shape=tf.stack([h, w]),
        interpolation="BILINEAR",
        fill_mode="REFLECT",
        fill_value=0.0,
    )


def _choice(rng, values):
    values = [float(v) for v in values]
    i = rng.uniform([], 0, len(values), dtype=tf.int32)
    return tf.gather(tf.constant(values, tf.float32), i)


def scale(factors: Sequence[float]) -> Transform:
    """Zooms by a factor drawn from `factors` about the centre (same size, reflect edges).

    Args:
        factors: the zoom factors to choose from, e.g. `(0.9, 1.0, 1.1)`.

    Returns:
        A transform.
    """
    factors = [float(f) for f in factors]
    if not factors or min(factors) <= 0:
        raise ValueError(f"scale needs positive factors; got {factors}.")

    def fn(images, rng):
        return _affine(images, tf.constant(0.0), _choice(rng, factors))

    return fn


def rotate(angles: Sequence[float]) -> Transform:
    """Rotates by an angle (degrees) drawn from `angles` about the centre (same size).

    Args:
        angles: the angles to choose from, e.g. `range(-5, 6)`.

    Returns:
        A transform.
    """
    angles = [float(a) for a in angles]
    if not angles:
        raise ValueError("rotate needs at least one angle.")

    def fn(images, rng):
        return _affine(images, _choice(rng, angles) * (math.pi / 180.0), tf.constant(1.0))

    return fn


def scale_rotate(factors: Sequence[float], angles: Sequence[float]) -> Transform:
    """`scale(factors)` then `rotate(angles)` as one resampling (cheaper, less blur).

    Args:
        factors: zoom factors to choose from.
        angles: angles in degrees to choose from.

    Returns:
        A transform.
    """
    factors = [float(f) for f in factors]
    angles = [float(a) for a in angles]
    if not factors or min(factors) <= 0 or not angles:
        raise ValueError("scale_rotate needs positive factors and at least one angle.")

    def fn(images, rng):
        factor = _choice(rng, factors)
        angle = _choice(rng, angles) * (math.pi / 180.0)
        return _affine(images, angle, factor)

    return fn


def compose(*transforms: Transform) -> Transform:
    """Applies transforms left to right (arguments or one list).

    Example:

    ```python
    t = compose(pad(4), jitter(4), scale([0.95, 1.05]), rotate(range(-5, 6)), jitter(2))
    ```

    Returns:
        A transform.
    """
    if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
        transforms = tuple(transforms[0])

    def fn(images, rng):
        for t in transforms:
            images = t(images, rng)
        return images

    return fn


def standard_transforms(size: int) -> Transform:
    """Lucid's standard robustness transforms, scaled to an image of `size` pixels.

    Pad, jitter, small zooms and rotations, and a last fine jitter; for a 64-pixel image
    that is `pad(2), jitter(4), scale(0.95..1.05), rotate(-5..5), jitter(2)`.

    Args:
        size: the image's side in pixels.

    Returns:
        A transform.
    """
    unit = max(1, int(size) // 32)
    return compose(
        pad(unit),
        jitter(2 * unit),
        scale_rotate([0.95, 0.975, 1.0, 1.025, 1.05], range(-5, 6)),
        jitter(unit),
    )
