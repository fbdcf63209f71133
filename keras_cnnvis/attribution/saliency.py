"""Vanilla gradient saliency (Simonyan et al. 2013): how much a small change of each pixel
changes the explained score, as the largest gradient magnitude over colour channels.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, reduce_channels, resolve, run
from keras_cnnvis.attribution.registry import register


@register("saliency", family="gradient")
def saliency(
    model: keras.Model,
    images: Any,
    target: Any = None,
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Gradient saliency maps: `max_c |d score / d image[y, x, c]|`.

    Example:

    ```python
    maps = saliency(model, x_val[:8])          # (8, H, W), predicted classes
    maps = saliency(model, x_val[:8], y_val[:8])  # the true classes
    ```

    Args:
        model: a single-input image model (Functional, Sequential, nested, subclassed).
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`): None for the predicted
            class, class indices, labels, a callable on the outputs or a hidden unit
            `(layer, channel[, y, x])`. Defaults to None.
        logits: explain the pre-softmax score when the model ends in a softmax/sigmoid.
            Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps (non-negative).

    Raises:
        ValueError: for images of the wrong shape or dtype, or a bad target.
    """
    x = check_images(model, images)
    result = run(model, x, resolve(model, x, target), logits=logits, batch_size=batch_size)
    return reduce_channels(result.grads, "max_abs")
