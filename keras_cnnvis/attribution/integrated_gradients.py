"""Integrated gradients (Sundararajan et al. 2017): gradients averaged along the straight path
from a baseline to the image, times the difference; they sum to f(image) - f(baseline).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, fixed_target, reduce_channels, run
from keras_cnnvis.attribution.registry import register
from keras_cnnvis.model.compiled import batch_size_for

BASELINES = ("zeros", "mean", "blur", "noise")
RULES = ("gausslegendre", "trapezoid")


def make_baseline(images: np.ndarray, baseline: Any, seed: int = 0) -> np.ndarray:
    """The baseline batch for `integrated_gradients` (same shape as `images`).

    Args:
        images: float32 `(N, H, W, C)`.
        baseline: `"zeros"` (black), `"mean"` (each image's mean colour), `"blur"`
            (a heavily blurred copy), `"noise"` (uniform noise in the images' range),
            a number, a `(C,)` colour, or an `(H, W, C)` / `(N, H, W, C)` array.
        seed: seed of the `"noise"` baseline. Defaults to 0.

    Returns:
        A float32 array shaped like `images`.
    """
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(images)
        if baseline == "mean":
            return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).copy()
        if baseline == "blur":
            import cv2

            sigma = max(images.shape[1:3]) / 8.0
            out = np.stack([cv2.GaussianBlur(img, (0, 0), sigma) for img in images])
            return out.reshape(images.shape).astype(np.float32)
        if baseline == "noise":
            rng = np.random.default_rng(seed)
            lo, hi = float(images.min()), float(images.max())
            return rng.uniform(lo, hi, images.shape).astype(np.float32)
        raise ValueError(f"Unknown baseline {baseline!r}; use one of {BASELINES} or an array.")
    arr = np.asarray(baseline, np.float32)
    try:
        return np.broadcast_to(arr, images.shape).astype(np.float32)
    except ValueError:
        raise ValueError(
            f"A baseline of shape {arr.shape} does not broadcast to the images' shape "
            f"{images.shape}; give a number, a (channels,) colour or an image."
        ) from None


def path_points(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature points `alphas` in [0, 1] and weights summing to 1 for `steps` points."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(int(steps))
        return (nodes + 1) / 2, weights / 2
    if rule == "trapezoid":
        if steps < 2:
            raise ValueError("The trapezoid rule needs steps >= 2.")
        alphas = np.linspace(0.0, 1.0, int(steps))
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    raise ValueError(f"rule must be one of {RULES}; got {rule!r}.")


def points_per_call(model: keras.Model, shape: tuple, batch_size: int) -> int:
    """How many path points of `shape[0]` images share one compiled call: as many as fit in
    `batch_size` images and in the byte budget of a forward+backward pass
    (`model.compiled.batch_size_for(..., backward=True)`), at least one. 8 probes of the
    demo CNN at batch 64: 8 points (4 calls for 32 points instead of 32); a 224x224
    ResNet50: 1."""
    per_call = min(int(batch_size), batch_size_for(model, shape[1:], backward=True))
    return max(1, per_call // int(shape[0]))


@register("integrated_gradients", family="gradient", options=("steps", "baseline"))
def integrated_gradients(
    model: keras.Model,
    images: Any,
    target: Any = None,
    baseline: Any = "zeros",
    steps: int = 32,
    rule: str = "gausslegendre",
    reduce: str | None = "sum",
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Integrated gradients: `(x - x0) * integral_0^1 grad f(x0 + a (x - x0)) da`.

    The integral is a quadrature over `steps` points, each a forward+backward pass of all
    images through one compiled function; when the images are fewer than `batch_size`,
    several points share a call (up to `batch_size // N`, fewer if a forward+backward pass
    of that many images would exceed `model.compiled.batch_size_for(..., backward=True)`).
    The explained class is fixed on the original images, so summed attributions equal
    `f(x) - f(baseline)` up to quadrature error.

    Example:

    ```python
    maps = integrated_gradients(model, x_val[:8], baseline="blur", steps=64)
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class of each image).
        baseline: see `make_baseline`. Defaults to `"zeros"`.
        steps: quadrature points along the path. Defaults to 32.
        rule: `"gausslegendre"` or `"trapezoid"`. Defaults to `"gausslegendre"`.
        reduce: channel reduction, `"sum"` keeps completeness; None keeps channels.
            Defaults to `"sum"`.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps, or `(N, H, W, C)` with `reduce=None`.

    Raises:
        ValueError: for bad images, target, baseline, steps, rule or reduce.
    """
    x = check_images(model, images)
    base = make_baseline(x, baseline)
    alphas, weights = path_points(steps, rule)
    resolved = fixed_target(model, x, target, logits, batch_size)
    n = len(x)
    # The sum runs point by point in the same order as with one call per point.
    group = points_per_call(model, x.shape, batch_size)
    repeated = {}  # points in a call -> the target repeated for them
    total = np.zeros_like(x)
    delta = x - base
    for first in range(0, len(alphas), group):
        count = min(group, len(alphas) - first)
        points = np.empty((count,) + x.shape, np.float32)
        for k in range(count):
            np.multiply(delta, np.float32(alphas[first + k]), out=points[k])
            points[k] += base
        if count not in repeated:
            repeated[count] = resolved.take(np.tile(np.arange(n), count))
        grads = run(
            model,
            points.reshape((-1,) + x.shape[1:]),
            repeated[count],
            logits=logits,
            batch_size=batch_size,
        ).grads.reshape(points.shape)
        for k in range(count):
            grads[k] *= np.float32(weights[first + k])
            total += grads[k]
    total *= delta
    return reduce_channels(total, reduce)
