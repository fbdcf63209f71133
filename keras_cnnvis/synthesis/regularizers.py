"""Regularisers applied between optimisation steps (Yosinski et al. 2015: L2 decay, blur every
k steps, clipping small pixels, contributions or gradients) and range projections.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf


class Regularizer:
    """A step hook of the render loop acting on a pixel variable `(N, H, W, C)`.

    `gradient(grad, var, step)` may change the ascent direction before the optimiser uses
    it; `update(var, grad, step)` may change the variable after the optimiser step. Pixel
    variables are centred (0 = mid-grey): see `param.pixel_image`.

    Args:
        name: a readable name.
        gradient: `fn(grad, var, step) -> grad`. Defaults to None.
        update: `fn(var, grad, step) -> new value of var`. Defaults to None.
    """

    def __init__(self, name: str, gradient: Callable | None = None, update: Callable | None = None):
        self.name = name
        self.gradient = gradient
        self.update = update

    def check(self, variables: list) -> None:
        """Raises ValueError unless every variable is an image batch `(N, H, W, C)`."""
        for var in variables:
            if var.shape.rank != 4:
                raise ValueError(
                    f"The regulariser {self.name} acts on pixels, but the parameterisation's "
                    f"variable has shape {tuple(var.shape)}; use param='pixel'."
                )

    def __repr__(self) -> str:
        return f"Regularizer({self.name})"


def _gaussian_kernel(sigma: float, channels: int) -> np.ndarray:
    radius = max(1, int(np.ceil(2 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(k, k)
    k /= k.sum()
    return np.tile(k[:, :, None, None], (1, 1, channels, 1)).astype(np.float32)


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Blurs `(N, H, W, C)` images with a Gaussian of width `sigma` (reflect edges)."""
    channels = int(images.shape[-1])
    kernel = _gaussian_kernel(sigma, channels)
    r = kernel.shape[0] // 2
    padded = tf.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")


def _below_percentile(score: tf.Tensor, percentile: float) -> tf.Tensor:
    """Mask `(N, H, W, 1)` of positions whose score `(N, H, W)` is below the per-image
    percentile."""
    flat = tf.reshape(score, [tf.shape(score)[0], -1])
    n = tf.shape(flat)[1]
    k = tf.cast(tf.math.floor(tf.cast(n - 1, tf.float32) * percentile / 100.0), tf.int32)
    thresh = tf.gather(tf.sort(flat, axis=1), k, axis=1)
    return (score < thresh[:, None, None])[..., None]


def _percentile(value: float) -> float:
    value = float(value)
    if not 0 <= value <= 100:
        raise ValueError(f"percentile must be in [0, 100]; got {value}.")
    return value


def l2_decay(rate: float = 0.01) -> Regularizer:
    """Shrinks the image towards mid-grey each step: `x <- (1 - rate) x`.

    Example:

    ```python
    render(model, obj, param="pixel", regularizers=[l2_decay(0.01), blur(0.5, every=4)])
    ```

    Args:
        rate: the decay per step. Defaults to 0.01.

    Returns:
        A `Regularizer`.
    """
    rate = float(rate)
    return Regularizer(f"l2_decay({rate:g})", update=lambda v, g, s: v * (1.0 - rate))


def blur(sigma: float = 0.5, every: int = 4) -> Regularizer:
    """Blurs the image with a Gaussian every `every` steps (removes high frequencies).

    Args:
        sigma: the Gaussian's standard deviation in pixels. Defaults to 0.5.
        every: blur on steps that are multiples of this. Defaults to 4.

    Returns:
        A `Regularizer`.
    """
    sigma, every = float(sigma), int(every)
    if sigma <= 0 or every < 1:
        raise ValueError(f"blur needs sigma > 0 and every >= 1; got {sigma}, {every}.")

    def update(v, g, step):
        return tf.where(step % every == 0, gaussian_blur(v, sigma), v)

    return Regularizer(f"blur({sigma:g}, every={every})", update=update)


def clip_pixels(percentile: float = 10.0) -> Regularizer:
    """Sets pixels whose norm (over channels) is below a percentile to mid-grey.

    Args:
        percentile: per image, in [0, 100]. Defaults to 10.

    Returns:
        A `Regularizer`.
    """
    p = _percentile(percentile)

    def update(v, g, step):
        mask = _below_percentile(tf.norm(v, axis=-1), p)
        return tf.where(mask, tf.zeros_like(v), v)

    return Regularizer(f"clip_pixels({p:g})", update=update)


def clip_contributions(percentile: float = 10.0) -> Regularizer:
    """Sets pixels with a small contribution `sum_c |x * grad|` to mid-grey (Yosinski's
    fourth regulariser: the objective barely depends on them).

    Args:
        percentile: per image, in [0, 100]. Defaults to 10.

    Returns:
        A `Regularizer`.
    """
    p = _percentile(percentile)

    def update(v, g, step):
        mask = _below_percentile(tf.reduce_sum(tf.abs(v * g), axis=-1), p)
        return tf.where(mask, tf.zeros_like(v), v)

    return Regularizer(f"clip_contributions({p:g})", update=update)


def clip_gradients(percentile: float = 10.0) -> Regularizer:
    """Zeroes the gradient at pixels whose gradient norm is below a percentile.

    Args:
        percentile: per image, in [0, 100]. Defaults to 10.

    Returns:
        A `Regularizer`.
    """
    p = _percentile(percentile)

    def gradient(g, v, step):
        mask = _below_percentile(tf.norm(g, axis=-1), p)
        return tf.where(mask, tf.zeros_like(g), g)

    return Regularizer(f"clip_gradients({p:g})", gradient=gradient)


def keep_in_range() -> Regularizer:
    """Projects a raw pixel variable (`pixel_image(mode="raw")`) back into [0, 1]."""
    return Regularizer("keep_in_range", update=lambda v, g, s: tf.clip_by_value(v, -0.5, 0.5))


def linf_ball(center: Any, epsilon: float) -> Regularizer:
    """Projects a raw pixel variable into the L-infinity ball of radius `epsilon` around
    `center` (images in [0, 1]) and into [0, 1]: the projection of PGD.

    Args:
        center: the original image batch `(N, H, W, C)` in [0, 1].
        epsilon: the radius in [0, 1] pixel units.

    Returns:
        A `Regularizer`.
    """
    center = np.asarray(center, np.float32) - 0.5
    lo = np.maximum(center - float(epsilon), -0.5)
    hi = np.minimum(center + float(epsilon), 0.5)
    return Regularizer(
        f"linf_ball({epsilon:g})", update=lambda v, g, s: tf.clip_by_value(v, lo, hi)
    )


YOSINSKI = (l2_decay, blur, clip_pixels, clip_contributions)
