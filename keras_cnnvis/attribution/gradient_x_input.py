"""Gradient times input: the first-order contribution of each pixel to the explained score
(exact for linear models; integrated gradients with a zero baseline and one step).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, reduce_channels, resolve, run
from keras_cnnvis.attribution.registry import register


@register("gradient_x_input", family="gradient")
def gradient_x_input(
    model: keras.Model,
    images: Any,
    target: Any = None,
    reduce: str | None = "sum",
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Gradient times input attributions, `image * d score / d image`.

    Example:

    ```python
    maps = gradient_x_input(model, x_val[:8])  # (8, H, W), signed
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        reduce: channel reduction: `"sum"` (signed), `"abs_sum"`, `"max_abs"`, `"l2"` or
            None (keep channels). Defaults to `"sum"`.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps, or `(N, H, W, C)` with `reduce=None`.

    Raises:
        ValueError: for images of the wrong shape or dtype, a bad target or `reduce`.
    """
    x = check_images(model, images)
    result = run(model, x, resolve(model, x, target), logits=logits, batch_size=batch_size)
    return reduce_channels(result.grads * x, reduce)
