"""SmoothGrad (Smilkov et al. 2017): one wrapper that averages any attribution method over
noisy copies of the images, with the explained class fixed on the clean images.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, fixed_target
from keras_cnnvis.attribution.registry import get_method, register
from keras_cnnvis.attribution.saliency import saliency


def smoothgrad(
    method: Callable | str,
    model: keras.Model,
    images: Any,
    target: Any = None,
    n_samples: int = 20,
    noise_level: float = 0.15,
    squared: bool = False,
    seed: int = 0,
    logits: bool | None = None,
    **method_kwargs: Any,
) -> np.ndarray:
    """Averages `method` over `n_samples` copies of the images with Gaussian noise added.

    The noise's standard deviation is `noise_level` times each image's value range. The
    class explained is the one of the clean image, so noise cannot change it. Each sample
    costs one call of `method` on the whole batch.

    Example:

    ```python
    maps = smoothgrad("saliency", model, x_val[:8], n_samples=20)
    maps = smoothgrad(integrated_gradients, model, x_val[:8], n_samples=10, steps=16)
    ```

    Args:
        method: an attribution function `method(model, images, target=..., **kwargs)` or
            its name (e.g. `"saliency"`, `"guided_backprop"`).
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class of each clean image).
        n_samples: noisy copies. Defaults to 20.
        noise_level: noise std as a fraction of each image's (max - min). Defaults to 0.15.
        squared: average the squared maps (SmoothGrad-Squared). Defaults to False.
        seed: noise seed. Defaults to 0.
        logits: passed on to the method when given (None: the method's default).
            Defaults to None.
        **method_kwargs: further arguments of `method`.

    Returns:
        float32 maps shaped like one call of `method`.

    Raises:
        ValueError: for a bad method name, `n_samples < 1` or a negative `noise_level`.
    """
    method = get_method(method)
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    if not noise_level >= 0:
        raise ValueError(f"noise_level must be >= 0; got {noise_level!r}.")
    x = check_images(model, images)
    # The argmax class is the same on logits and probabilities.
    resolved = fixed_target(model, x, target, True, method_kwargs.get("batch_size", 64))
    if logits is not None:
        method_kwargs = dict(method_kwargs, logits=logits)
    span = (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).reshape(-1, 1, 1, 1)
    sigma = (noise_level * span).astype(np.float32)
    rng = np.random.default_rng(seed)
    total = None
    for _ in range(int(n_samples)):
        noisy = rng.standard_normal(x.shape, dtype=np.float32)
        noisy *= sigma
        noisy += x
        maps = method(model, noisy, target=resolved, **method_kwargs)
        maps = np.square(maps, dtype=np.float64) if squared else maps.astype(np.float64)
        if total is None:
            total = maps
        else:
            total += maps
    return (total / n_samples).astype(np.float32)


@register("smoothgrad", family="gradient", options=("n_samples", "noise_level"))
def _smooth_saliency(
    model: keras.Model, images: Any, target: Any = None, **kwargs: Any
) -> np.ndarray:
    """SmoothGrad on saliency: `smoothgrad(saliency, model, images, target, **kwargs)`."""
    return smoothgrad(saliency, model, images, target=target, **kwargs)


_smooth_saliency.__name__ = "smoothgrad"
