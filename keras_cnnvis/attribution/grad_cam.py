"""Gradient-weighted class activation maps: Grad-CAM (Selvaraju et al. 2017), Guided
Grad-CAM, Grad-CAM++ (Chattopadhyay et al. 2018) and LayerCAM (Jiang et al. 2021).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import (
    check_images,
    check_spatial,
    fixed_target,
    reduce_channels,
    resolve,
    run,
    spatial_layer,
    upsample as _upsample,
)
from keras_cnnvis.attribution.registry import register


def _activations_and_grads(model, x, target, layer, logits, batch_size, method):
    info = spatial_layer(model, layer, method)
    result = run(
        model,
        x,
        resolve(model, x, target),
        wrt=info.path,
        capture=(info.path,),
        logits=logits,
        batch_size=batch_size,
    )
    acts = result.hidden[0]
    check_spatial(acts, info.path, method)
    return acts, result.grads


def _finish(cams: np.ndarray, x: np.ndarray, up: bool) -> np.ndarray:
    cams = np.maximum(cams, 0).astype(np.float32)
    return _upsample(cams, x.shape[1:3]) if up else cams


@register("grad_cam", family="cam", needs_layer=True, display="smooth")
def grad_cam(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    upsample: bool = True,
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM: `relu(sum_k alpha_k A_k)` with `alpha_k` the spatial mean of `dS/dA_k`.

    Example:

    ```python
    maps = grad_cam(model, x_val[:8])                  # last conv layer, (8, H, W)
    maps = grad_cam(model, x_val[:8], layer="conv3", upsample=False)
    ```

    Args:
        model: a single-input image model (Functional, Sequential, nested, subclassed).
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        layer: the layer whose feature maps are weighted: a name, a nested path like
            `"base/conv5"`, `"last_conv"` or `"feature_map"`. Defaults to `"feature_map"`
            (the output of the last block before the head, see `model_anatomy`).
        upsample: resize the maps bilinearly to the image size; False keeps the layer's
            resolution. Defaults to True.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` non-negative maps (`(N, h, w)` without upsampling).

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, bad images or
            target.
    """
    x = check_images(model, images)
    acts, grads = _activations_and_grads(model, x, target, layer, logits, batch_size, "grad_cam")
    alpha = grads.mean(axis=(1, 2), keepdims=True)
    return _finish((alpha * acts).sum(-1), x, upsample)


@register("grad_cam_plus_plus", family="cam", needs_layer=True, display="smooth")
def grad_cam_plus_plus(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    upsample: bool = True,
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM++: pixel-weighted gradients, better for several instances of a class.

    With `g = dS/dA` and an exponential output, `a = g^2 / (2 g^2 + sum_ab(A) g^3)`,
    `w_k = sum_ab a * relu(g)` and the map is `relu(sum_k w_k A_k)`.

    Example:

    ```python
    maps = grad_cam_plus_plus(model, x_val[:8])
    ```

    Args:
        model: a single-input image model (Functional, Sequential, nested, subclassed).
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        layer: the layer whose feature maps are weighted: a name, a nested path like
            `"base/conv5"`, `"last_conv"` or `"feature_map"`. Defaults to `"feature_map"`
            (the output of the last block before the head, see `model_anatomy`).
        upsample: resize the maps bilinearly to the image size; False keeps the layer's
            resolution. Defaults to True.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` non-negative maps (`(N, h, w)` without upsampling).

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, bad images or
            target.
    """
    x = check_images(model, images)
    acts, g = _activations_and_grads(
        model, x, target, layer, logits, batch_size, "grad_cam_plus_plus"
    )
    g2, g3 = g**2, g**3
    denom = 2 * g2 + acts.sum(axis=(1, 2), keepdims=True) * g3
    alpha = np.where(denom != 0, g2 / np.where(denom != 0, denom, 1), 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2), keepdims=True)
    return _finish((weights * acts).sum(-1), x, upsample)


@register("layer_cam", family="cam", needs_layer=True, display="smooth")
def layer_cam(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    upsample: bool = True,
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """LayerCAM: `relu(sum_k relu(dS/dA_k) * A_k)`, weighting each position separately.

    Finer than Grad-CAM on early layers, where spatially averaged weights blur.

    Example:

    ```python
    maps = layer_cam(model, x_val[:8], layer="conv2")
    ```

    Args:
        model: a single-input image model (Functional, Sequential, nested, subclassed).
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class).
        layer: the layer whose feature maps are weighted: a name, a nested path like
            `"base/conv5"`, `"last_conv"` or `"feature_map"`. Defaults to `"feature_map"`
            (the output of the last block before the head, see `model_anatomy`).
        upsample: resize the maps bilinearly to the image size; False keeps the layer's
            resolution. Defaults to True.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` non-negative maps (`(N, h, w)` without upsampling).

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, bad images or
            target.
    """
    x = check_images(model, images)
    acts, grads = _activations_and_grads(model, x, target, layer, logits, batch_size, "layer_cam")
    return _finish((np.maximum(grads, 0) * acts).sum(-1), x, upsample)


@register("guided_grad_cam", family="cam", needs_layer=True, needs_relu=True)
def guided_grad_cam(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    reduce: str | None = "max_abs",
    logits: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map.

    High resolution (from guided backprop) and class-discriminative (from Grad-CAM).

    Example:

    ```python
    rgb = guided_grad_cam(model, x_val[:4], reduce=None)   # (4, H, W, 3)
    ```

    Args:
        model: an image model with ReLU activations (see `guided_backprop`).
        images: float `(N, H, W, C)` batch.
        target: what to explain. Defaults to None (the predicted class).
        layer: the Grad-CAM layer. Defaults to `"feature_map"` (see `model_anatomy`).
        reduce: channel reduction of the product, or None to keep channels.
            Defaults to `"max_abs"`.
        logits: explain the pre-softmax score. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps, or `(N, H, W, C)` with `reduce=None`.

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, a model
            without overridable ReLU, bad images or target.
    """
    x = check_images(model, images)
    resolved = fixed_target(model, x, target, logits, batch_size)
    cams = grad_cam(model, x, resolved, layer, True, logits, batch_size)
    guided = run(model, x, resolved, relu="guided", logits=logits, batch_size=batch_size)
    return reduce_channels(guided.grads * cams[..., None], reduce)
