"""Texture synthesis (Gatys et al. 2015: match Gram matrices of several layers) and style
transfer (Gatys et al. 2016: content features + style Gram matrices + total variation).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np

from keras_cnnvis.model import conv_layers, find_layer, iter_layers
from keras_cnnvis.synthesis import objectives as obj
from keras_cnnvis.synthesis.invert import layer_features
from keras_cnnvis.synthesis.models import VGG_CONTENT_LAYER, VGG_STYLE_LAYERS, fit_image
from keras_cnnvis.synthesis.render import flexible_model, render


def default_style_layers(model: keras.Model) -> list[str]:
    """Gatys's layers for VGG networks (`block1_conv1` .. `block5_conv1`); otherwise every
    convolution layer (at most the first 8).

    Raises:
        ValueError: for a model without convolution layers.
    """
    paths = [i.path for i in iter_layers(model)]
    names = {p.split("/")[-1]: p for p in paths}
    if all(n in names for n in VGG_STYLE_LAYERS):
        return [names[n] for n in VGG_STYLE_LAYERS]
    convs = conv_layers(model)
    if not convs:
        raise ValueError(
            f"Model '{model.name}' has no convolution layer; pass style/texture layers."
        )
    return [c.path for c in convs[:8]]


def default_content_layer(model: keras.Model) -> str:
    """`block4_conv2` for VGG networks; otherwise the convolution layer a third of the
    way up (early enough to keep the layout and edges)."""
    paths = [i.path for i in iter_layers(model)]
    for p in paths:
        if p.split("/")[-1] == VGG_CONTENT_LAYER:
            return p
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"Model '{model.name}' has no convolution layer; pass a content layer.")
    return convs[(len(convs) - 1) // 3].path


def _weights(layers: Sequence[str], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0 / len(layers)] * len(layers)
    weights = [float(w) for w in weights]
    if len(weights) != len(layers):
        raise ValueError(f"{len(weights)} layer weights for {len(layers)} layers.")
    return weights


def _input(model: keras.Model, image: Any) -> np.ndarray:
    return fit_image(image, model, resize=flexible_model(model) is None)[:1]


def texture_objective(
    model: keras.Model,
    texture: Any,
    layers: Sequence[Any] | None = None,
    layer_weights: Sequence[float] | None = None,
    preprocess: Callable | None = None,
) -> obj.Objective:
    """Minus the weighted normalised Gram distance to `texture` (0 = same statistics).

    Args:
        model: the feature network.
        texture: `(H, W, C)` in [0, 1].
        layers: the layers. Defaults to None (`default_style_layers`).
        layer_weights: one weight per layer. Defaults to None (equal, summing to 1).
        preprocess: maps [0, 1] images to the model's input. Defaults to None.

    Returns:
        An `Objective`.
    """
    paths = [find_layer(model, l).path for l in (layers or default_style_layers(model))]
    weights = _weights(paths, layer_weights)
    feats = layer_features(model, _input(model, texture), paths, preprocess)
    grams = [np.asarray(obj.gram_matrix(f))[0] for f in feats]
    return sum(w * obj.gram_style(p, g) for p, w, g in zip(paths, weights, grams))


def synthesize_texture(
    model: keras.Model,
    texture: Any,
    layers: Sequence[Any] | None = None,
    size: Any = None,
    steps: int = 200,
    param: Any = "fourier",
    learning_rate: float = 0.05,
    layer_weights: Sequence[float] | None = None,
    tv_weight: float = 0.0,
    transforms: Any = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Synthesises a new image with the texture's Gram statistics (Gatys et al. 2015).

    Random-weight convolution networks already give convincing textures; trained ones
    (e.g. VGG with ImageNet weights) give richer structure.

    Example:

    ```python
    tex = synthesize_texture(model, sample_image("gravel", 128), size=192)
    ```

    Args:
        model: the feature network (any size if it can run at other sizes).
        texture: `(H, W, C)` in [0, 1].
        layers: layers whose Gram matrices are matched. Defaults to None
            (`default_style_layers`).
        size: output size. Defaults to None (the texture's size).
        steps: optimisation steps. Defaults to 200.
        param: `"fourier"` or `"pixel"`. Defaults to `"fourier"`.
        learning_rate: Adam's step size. Defaults to 0.05.
        layer_weights: one weight per layer. Defaults to None (equal).
        tv_weight: total-variation weight. Defaults to 0.0.
        transforms: transforms during optimisation. Defaults to None.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        float32 `(H, W, C)` in [0, 1].

    Raises:
        ValueError: for an unknown layer, a bad image or a non-image model.
    """
    x = _input(model, texture)
    objective = texture_objective(model, x[0], layers, layer_weights, preprocess)
    if tv_weight:
        objective = objective - tv_weight * obj.total_variation()
    result = render(
        model,
        objective,
        size=x.shape[1:3] if size is None else size,
        steps=steps,
        param=param,
        transforms=transforms,
        learning_rate=learning_rate,
        preprocess=preprocess,
        seed=seed,
        progress=progress,
    )
    return result.images[0]


def style_transfer_objective(
    model: keras.Model,
    content: Any,
    style: Any,
    content_layers: Sequence[Any] | None = None,
    style_layers: Sequence[Any] | None = None,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    tv_weight: float = 1.0,
    preprocess: Callable | None = None,
) -> obj.Objective:
    """Minus Gatys's total loss: `content_weight * content + style_weight * style +
    tv_weight * TV` (each content/style term normalised; see `feature_match`,
    `gram_style`).

    Returns:
        An `Objective` (its value is minus the total loss).
    """
    c = _input(model, content)
    content_paths = [
        find_layer(model, l).path for l in (content_layers or [default_content_layer(model)])
    ]
    feats = layer_features(model, c, content_paths, preprocess)
    content_term = sum(obj.feature_match(p, f) for p, f in zip(content_paths, feats)) / len(
        content_paths
    )
    style_term = texture_objective(model, style, style_layers, None, preprocess)
    objective = content_weight * content_term + style_weight * style_term
    if tv_weight:
        objective = objective - tv_weight * obj.total_variation()
    return objective


def style_transfer(
    model: keras.Model,
    content: Any,
    style: Any,
    content_layers: Sequence[Any] | None = None,
    style_layers: Sequence[Any] | None = None,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    tv_weight: float = 1.0,
    steps: int = 200,
    init: str = "content",
    param: Any = "pixel",
    learning_rate: float = 0.03,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Paints the content image in the style image's textures (Gatys et al. 2016).

    Example:

    ```python
    out = style_transfer(model, sample_image("chelsea", 128), sample_image("gravel", 128))
    ```

    Args:
        model: the feature network.
        content: `(H, W, C)` in [0, 1]; the output has its size.
        style: `(H, W, C)` in [0, 1] (any size the network can take).
        content_layers: layers whose features are kept. Defaults to None
            (`default_content_layer`).
        style_layers: layers whose Gram matrices are matched. Defaults to None
            (`default_style_layers`).
        content_weight: content-loss weight. Defaults to 1.0.
        style_weight: style-loss weight. Defaults to 10.0.
        tv_weight: total-variation weight. Defaults to 1.0.
        steps: optimisation steps. Defaults to 200.
        init: start from `"content"` or `"noise"`. Defaults to `"content"`.
        param: `"pixel"` or `"fourier"`. Defaults to `"pixel"`.
        learning_rate: Adam's step size. Defaults to 0.03.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        float32 `(H, W, C)` in [0, 1].

    Raises:
        ValueError: for an unknown layer or `init`, a bad image or a non-image model.
    """
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise'; got {init!r}.")
    c = _input(model, content)
    objective = style_transfer_objective(
        model,
        c[0],
        style,
        content_layers,
        style_layers,
        content_weight,
        style_weight,
        tv_weight,
        preprocess,
    )
    result = render(
        model,
        objective,
        size=c.shape[1:3],
        steps=steps,
        param=param,
        init=c if init == "content" else None,
        transforms=None,
        learning_rate=learning_rate,
        preprocess=preprocess,
        seed=seed,
        progress=progress,
    )
    return result.images[0]
