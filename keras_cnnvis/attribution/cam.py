"""Class activation maps (Zhou et al. 2016) for models that end in global average pooling and
one Dense layer: the class's Dense weights applied to the last feature maps.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import (
    check_images,
    check_spatial,
    resolve,
    run,
    spatial_layer,
    upsample as _upsample,
)
from keras_cnnvis.attribution.registry import register
from keras_cnnvis.model import iter_layers

_PASS_THROUGH = (keras.layers.Dropout, keras.layers.Flatten, keras.layers.Softmax)
_OUTPUT_ACTIVATIONS = ("linear", "softmax", "sigmoid")


def cam_head(model: keras.Model, layer: Any = "feature_map") -> keras.layers.Dense:
    """Checks that `layer` is followed by GAP and one Dense layer; returns that Dense.

    Raises:
        ValueError: naming the first layer that breaks the GAP + Dense structure.
    """
    info = spatial_layer(model, layer, "cam")
    infos = [i for i in iter_layers(model) if not isinstance(i.layer, keras.Model)]
    index = next(k for k, i in enumerate(infos) if i.layer is info.layer)
    gap, dense = None, None
    fix = "Use grad_cam, which works on any model (and equals CAM on GAP + Dense models)."
    for follower in infos[index + 1 :]:
        layer_obj = follower.layer
        activation = getattr(getattr(layer_obj, "activation", None), "__name__", None)
        if isinstance(layer_obj, keras.layers.GlobalAveragePooling2D) and gap is None:
            gap = layer_obj
        elif isinstance(layer_obj, keras.layers.Dense) and gap is not None and dense is None:
            if activation not in _OUTPUT_ACTIVATIONS:
                raise ValueError(
                    f"cam needs the Dense layer after global average pooling to be the "
                    f"output layer; '{follower.path}' has activation '{activation}'. {fix}"
                )
            dense = layer_obj
        elif isinstance(layer_obj, _PASS_THROUGH) or (
            isinstance(layer_obj, keras.layers.Activation) and activation in _OUTPUT_ACTIVATIONS
        ):
            continue
        else:
            raise ValueError(
                f"cam needs layer '{info.path}' to be followed only by "
                f"GlobalAveragePooling2D and one Dense output layer; found "
                f"'{follower.path}' ({type(layer_obj).__name__}). {fix}"
            )
    if gap is None or dense is None:
        raise ValueError(
            f"cam needs layer '{info.path}' to be followed by GlobalAveragePooling2D and a "
            f"Dense output layer; model '{model.name}' does not have them. {fix}"
        )
    return dense


def _check_head(model: keras.Model, probe: Any, layer: Any = "feature_map", **kwargs: Any) -> None:
    cam_head(model, layer)


@register("cam", family="cam", needs_layer=True, display="smooth", validate=_check_head)
def cam(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    upsample: bool = True,
    batch_size: int = 64,
) -> np.ndarray:
    """CAM: `sum_k W[k, c] A_k`, the class-`c` Dense weights over the last feature maps.

    Defined for models `... -> layer -> GlobalAveragePooling2D -> Dense(classes)`; the map
    is signed (negative evidence stays negative) and its spatial mean plus the Dense bias
    is the class's pre-softmax score.

    Example:

    ```python
    maps = cam(model, x_val[:8])
    ```

    Args:
        model: a GAP + Dense image classifier.
        images: float `(N, H, W, C)` batch.
        target: None (the predicted class), a class index, or per-image classes/labels.
            Defaults to None.
        layer: the layer before global average pooling. Defaults to `"feature_map"`.
        upsample: resize the maps to the image size. Defaults to True.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` maps (`(N, h, w)` without upsampling).

    Raises:
        ValueError: for a model without the GAP + Dense structure, a target that is not a
            class, bad images or classes.
    """
    x = check_images(model, images)
    dense = cam_head(model, layer)
    info = spatial_layer(model, layer, "cam")
    resolved = resolve(model, x, target)
    if resolved.kind != "class":
        raise ValueError(
            "cam explains class scores only; for callable or hidden-unit targets use grad_cam."
        )
    result = run(model, x, resolved, wrt=None, capture=(info.path,), batch_size=batch_size)
    acts = result.hidden[0]
    check_spatial(acts, info.path, "cam")
    kernel = np.asarray(keras.ops.convert_to_numpy(dense.kernel), np.float32)
    weights = kernel[:, result.aux].T  # (N, K)
    maps = np.einsum("nhwk,nk->nhw", acts, weights).astype(np.float32)
    return _upsample(maps, x.shape[1:3]) if upsample else maps
