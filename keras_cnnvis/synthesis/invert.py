"""Feature inversion (Mahendran & Vedaldi 2015): the image whose features at a layer match a
given image's, regularised by total variation and an alpha-norm.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.model import FeatureExtractor, find_layers
from keras_cnnvis.synthesis import objectives as obj
from keras_cnnvis.synthesis.models import fit_image
from keras_cnnvis.synthesis.render import _model_for, render


def layer_features(
    model: keras.Model, images: np.ndarray, layers: Any, preprocess: Callable | None = None
) -> list[np.ndarray]:
    """Features of `layers` for an image batch `(N, H, W, C)` in [0, 1] (any size the model
    can take), via `FeatureExtractor`."""
    images = np.asarray(images, np.float32)
    run_model, resize_to = _model_for(model, images.shape[1:3])
    if resize_to is not None and tuple(images.shape[1:3]) != tuple(resize_to):
        raise ValueError(
            f"Model '{model.name}' takes {resize_to[0]}x{resize_to[1]} images; got "
            f"{images.shape[1]}x{images.shape[2]}."
        )
    x = images if preprocess is None else np.asarray(preprocess(images), np.float32)
    infos = find_layers(run_model, layers)
    feats, _ = FeatureExtractor(run_model, [i.layer for i in infos])(x)
    return feats


def inversion_objective(
    target: np.ndarray, layer: str, tv_weight: float, alpha: float, alpha_weight: float
) -> obj.Objective:
    """Feature match minus the TV and alpha-norm penalties (maximised)."""
    objective = obj.feature_match(layer, target)
    if tv_weight:
        objective = objective - tv_weight * obj.total_variation(beta=2.0)
    if alpha_weight:
        objective = objective - alpha_weight * obj.alpha_norm(alpha)
    return objective


def invert_features(
    model: keras.Model,
    image: Any,
    layer: Any,
    steps: int = 300,
    param: Any = "pixel",
    tv_weight: float = 0.05,
    alpha: float = 6.0,
    alpha_weight: float = 0.05,
    learning_rate: float = 0.05,
    transforms: Any = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Reconstructs an image from its features at one layer (what the layer keeps).

    Minimises `||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight * TV(x) +
    alpha_weight * mean|x - 0.5|^alpha` from noise. Early layers give the image back
    almost exactly; deep layers keep the layout and lose the details.

    Example:

    ```python
    rebuilt = invert_features(model, photo, "conv2")
    ```

    Args:
        model: a Keras image model.
        image: `(H, W, C)` in [0, 1] (resized to a fixed-size model's input).
        layer: the layer whose features are matched.
        steps: optimisation steps. Defaults to 300.
        param: `"pixel"` or `"fourier"`. Defaults to `"pixel"`.
        tv_weight: total-variation weight (beta = 2). Defaults to 0.05.
        alpha: the alpha-norm exponent. Defaults to 6.0.
        alpha_weight: the alpha-norm weight. Defaults to 0.05.
        learning_rate: Adam's step size. Defaults to 0.05.
        transforms: transforms during optimisation. Defaults to None.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        The reconstruction, float32 `(H, W, C)` in [0, 1].

    Raises:
        ValueError: for an unknown layer, a bad image or a non-image model.
    """
    x0 = fit_image(image, model)[:1]
    (target,) = layer_features(model, x0, [layer], preprocess)
    path = find_layers(model, [layer])[0].path
    objective = inversion_objective(target, path, tv_weight, alpha, alpha_weight)
    result = render(
        model,
        objective,
        size=x0.shape[1:3],
        steps=steps,
        param=param,
        transforms=transforms,
        learning_rate=learning_rate,
        preprocess=preprocess,
        seed=seed,
        progress=progress,
    )
    return result.images[0]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
