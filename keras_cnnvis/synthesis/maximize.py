"""Activation maximisation: the image that most excites a channel (`visualize_filter`) or a
class (`visualize_class`, Simonyan et al. 2013), with Lucid's parameterisation and transforms.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np

from keras_cnnvis.synthesis import objectives as obj
from keras_cnnvis.synthesis._checks import check_channels, check_classes
from keras_cnnvis.synthesis.render import image_size, render


def _as_list(value) -> tuple[list[int], bool]:
    if isinstance(value, (int, np.integer)):
        return [int(value)], True
    values = [int(v) for v in value]
    if not values:
        raise ValueError("Give at least one index.")
    return values, False


def visualize_filter(
    model: keras.Model,
    layer: Any,
    channel: int | Sequence[int],
    size: Any = None,
    steps: int = 128,
    param: Any = "fourier",
    transforms: Any = "default",
    learning_rate: float = 0.05,
    tv_weight: float = 0.0,
    regularizers: Sequence | None = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """The image that maximises the mean activation of a channel.

    Example:

    ```python
    img = visualize_filter(model, "conv3", 5)          # (64, 64, 3)
    imgs = visualize_filter(model, "conv3", range(8))  # (8, 64, 64, 3)
    ```

    Args:
        model: a Keras image model.
        layer: the layer (name, path, `"last_conv"` or object).
        channel: a channel index, or several (one image each, optimised as a batch).
        size: image size (int or `(h, w)`). Defaults to None (the model's input size).
        steps: optimisation steps. Defaults to 128.
        param: `"fourier"` or `"pixel"` (see `render`). Defaults to `"fourier"`.
        transforms: robustness transforms. Defaults to `"default"`.
        learning_rate: Adam's step size. Defaults to 0.05.
        tv_weight: weight of a total-variation penalty. Defaults to 0.0.
        regularizers: Yosinski regularisers (with `param="pixel"`). Defaults to None.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        float32 `(H, W, C)` for one channel, `(N, H, W, C)` for several, in [0, 1].

    Raises:
        ValueError: for an unknown layer, a channel out of range, or a non-image model.
    """
    channels, single = _as_list(channel)
    shape = image_size(model, size)
    check_channels(model, layer, channels, shape, preprocess)
    objective = sum(obj.channel(layer, c, batch=i) for i, c in enumerate(channels))
    if tv_weight:
        objective = objective - tv_weight * obj.total_variation()
    result = render(
        model,
        objective,
        size=shape[:2],
        batch=len(channels),
        steps=steps,
        param=param,
        transforms=transforms,
        learning_rate=learning_rate,
        regularizers=regularizers,
        preprocess=preprocess,
        seed=seed,
        progress=progress,
    )
    return result.images[0] if single else result.images


def visualize_class(
    model: keras.Model,
    class_index: int | Sequence[int],
    size: Any = None,
    steps: int = 128,
    param: Any = "fourier",
    transforms: Any = "default",
    learning_rate: float = 0.05,
    l2_weight: float = 0.0,
    tv_weight: float = 0.0,
    regularizers: Sequence | None = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """The image that maximises a class score (the logit before softmax).

    Example:

    ```python
    imgs = visualize_class(model, range(5), steps=64)  # one image per class
    ```

    Args:
        model: a Keras image classifier.
        class_index: a class index, or several (one image each).
        size: image size. Defaults to None (the model's input size).
        steps: optimisation steps. Defaults to 128.
        param: `"fourier"` or `"pixel"`. Defaults to `"fourier"`.
        transforms: robustness transforms. Defaults to `"default"`.
        learning_rate: Adam's step size. Defaults to 0.05.
        l2_weight: weight of Simonyan's L2 penalty. Defaults to 0.0.
        tv_weight: weight of a total-variation penalty. Defaults to 0.0.
        regularizers: Yosinski regularisers (with `param="pixel"`). Defaults to None.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        float32 `(H, W, C)` for one class, `(N, H, W, C)` for several, in [0, 1].

    Raises:
        ValueError: for a class index out of range or a non-image model.
    """
    classes, single = _as_list(class_index)
    shape = image_size(model, size)
    check_classes(model, classes, shape, preprocess)
    objective = sum(obj.class_logit(c, batch=i) for i, c in enumerate(classes))
    if l2_weight:
        objective = objective - l2_weight * obj.l2()
    if tv_weight:
        objective = objective - tv_weight * obj.total_variation()
    result = render(
        model,
        objective,
        size=shape[:2],
        batch=len(classes),
        steps=steps,
        param=param,
        transforms=transforms,
        learning_rate=learning_rate,
        regularizers=regularizers,
        preprocess=preprocess,
        seed=seed,
        progress=progress,
    )
    return result.images[0] if single else result.images
