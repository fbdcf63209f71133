"""Guided backpropagation (Springenberg et al. 2015) and the deconvnet (Zeiler & Fergus 2014):
gradients with modified ReLU backward rules, installed temporarily by `model_overrides`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, reduce_channels, resolve, run
from keras_cnnvis.attribution.registry import register


def _modified(model, images, target, relu, reduce, logits, batch_size) -> np.ndarray:
    x = check_images(model, images)
    result = run(
        model, x, resolve(model, x, target), relu=relu, logits=logits, batch_size=batch_size
    )
    return reduce_channels(result.grads, reduce)


@register("guided_backprop", family="gradient", needs_relu=True)
def guided_backprop(
    model: keras.Model,
    images: Any,
    target: Any = None,
    reduce: str | None = "max_abs",
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Guided backpropagation: at each ReLU the gradient becomes `g * (x > 0) * (g > 0)`.

    Only positive signals flow back through units that were active, which gives sharp,
    image-like maps. They are known to depend little on the upper layers' weights
    (Adebayo et al. 2018; see `sanity_check`). Explain hidden units with a target
    `(layer, channel)` as in the paper's intermediate-feature figures.

    Example:

    ```python
    rgb = guided_backprop(model, x_val[:4], reduce=None)    # (4, H, W, 3)
    unit = guided_backprop(model, x_val[:4], target=("conv3", 7))
    ```

    Args:
        model: an image model with ReLU as activation arguments or ReLU layers.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        reduce: channel reduction (`"max_abs"`, `"sum"`, `"abs_sum"`, `"l2"`) or None to
            keep the colour channels. Defaults to `"max_abs"`.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps, or `(N, H, W, C)` with `reduce=None`.

    Raises:
        ValueError: for a model without an overridable ReLU, bad images or target.
    """
    return _modified(model, images, target, "guided", reduce, logits, batch_size)


@register("deconvnet", family="gradient", needs_relu=True)
def deconvnet(
    model: keras.Model,
    images: Any,
    target: Any = None,
    reduce: str | None = "max_abs",
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Deconvnet reconstruction: ReLUs pass `relu(g)` back, ignoring the forward mask.

    Max-pooling uses the forward pass's switches and convolutions use transposed filters,
    which is exactly the ordinary gradient of those layers; only the ReLU rule differs.

    Example:

    ```python
    rgb = deconvnet(model, x_val[:4], target=("conv2", 3), reduce=None)
    ```

    Args:
        model: an image model with ReLU as activation arguments or ReLU layers.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        reduce: channel reduction or None to keep channels. Defaults to `"max_abs"`.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps, or `(N, H, W, C)` with `reduce=None`.

    Raises:
        ValueError: for a model without an overridable ReLU, bad images or target.
    """
    return _modified(model, images, target, "deconvnet", reduce, logits, batch_size)
