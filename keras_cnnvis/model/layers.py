"""Layer lookup: every layer of a model with its path (nested models joined by `/`), lookup by
path, name, index or object, and the checks that a model takes one channels-last image.

Works on Functional, Sequential, nested (a model used as a layer) and subclassed models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import keras
import numpy as np

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)

LayerRef = "str | keras.layers.Layer"


@dataclass(frozen=True)
class LayerInfo:
    """A layer found inside a model, with its path (nested model names joined by `/`)."""

    path: str
    layer: keras.layers.Layer

    @property
    def name(self) -> str:
        return self.layer.name


def _children(layer: keras.layers.Layer, ops: bool = False) -> list:
    if isinstance(layer, keras.Model):
        members = getattr(layer, "operations", None) if ops else None
        if members is None:
            members = layer.layers
        # `model.layers` of a Functional model skips its InputLayer objects.
        return [c for c in members if not isinstance(c, keras.layers.InputLayer)]
    return []


def is_layer(op: Any) -> bool:
    """Whether `op` is a Keras layer (not a bare operation such as the `+` of two tensors)."""
    return isinstance(op, keras.layers.Layer)


def iter_layers(model: keras.Model, ops: bool = False) -> Iterator[LayerInfo]:
    """Yields every layer of `model` in forward order, descending into nested models.

    Nested models are yielded themselves and then their layers, with paths like
    `"base/block1_conv1"`. With `ops=True` the operations of Functional models that are
    not layers (e.g. `x + y`, recorded as `add_17` in `model.operations`) are yielded too,
    in graph order; their `LayerInfo.layer` is the operation.

    Example:

    ```python
    for info in iter_layers(model):
        print(info.path, type(info.layer).__name__)
    ```

    Args:
        model: a Keras model of any kind.
        ops: also yield operations that are not layers. Defaults to False.

    Returns:
        An iterator of `LayerInfo(path, layer)`.
    """

    def walk(layer, prefix):
        for child in _children(layer, ops):
            path = f"{prefix}{child.name}"
            yield LayerInfo(path, child)
            yield from walk(child, path + "/")

    yield from walk(model, "")


def is_conv(layer: keras.layers.Layer) -> bool:
    """Whether `layer` is a 2-D convolution (Conv2D, transposed, depthwise or separable)."""
    return isinstance(layer, CONV_TYPES)


def conv_layers(model: keras.Model) -> list[LayerInfo]:
    """All 2-D convolution layers of `model`, in forward order, nested models included."""
    return [info for info in iter_layers(model) if is_conv(info.layer)]


def is_trainable(model: keras.Model, layer: Any) -> bool:
    """Whether `model.fit` trains the weights of `layer` (a path, name, object or index).

    True when at least one of the layer's weights is among `model.trainable_weights`: the
    layer is trainable itself and so is the model. Keras 3 pushes `trainable=False` from a
    model down to every layer and variable inside it (`base.trainable = False` freezes a
    nested base); a layer switched back on afterwards (`base.trainable = False`, then
    `base.layers[-1].trainable = True`) is trained again, and this function says so.

    Example:

    ```python
    base.trainable = False
    is_trainable(model, "mobilenetv2_1.00_96/Conv1")  # False
    ```

    Args:
        model: a Keras model of any kind.
        layer: a layer reference (see `find_layer`).

    Returns:
        False for a frozen layer and for a layer without weights (nothing to train).

    Raises:
        ValueError: if the layer is not part of `model`.
    """
    weights = getattr(find_layer(model, layer).layer, "weights", None) or []
    trained = {id(v) for v in model.trainable_weights}
    return any(id(v) in trained for v in weights)


def output_shape(layer: keras.layers.Layer) -> tuple | None:
    """The symbolic output shape of `layer` (batch axis included), or None if unknown
    (a layer of a subclassed model that has no symbolic output)."""
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None


def _describe(infos: Sequence[LayerInfo]) -> str:
    return ", ".join(f"'{i.path}' ({type(i.layer).__name__})" for i in infos) or "none"


def find_layer(model: keras.Model, layer: Any) -> LayerInfo:
    """Finds a layer by path, bare name, index or object.

    A bare name (e.g. `"conv1"`) matches a layer at any depth if it is unique; a path
    (`"base/conv1"`) matches exactly. `"last_conv"` selects the last convolution layer;
    `"feature_map"` the output of the last block before the head (`model_anatomy`), or
    the last convolution when the anatomy finds none.

    Example:

    ```python
    info = find_layer(model, "last_conv")
    print(info.path)
    ```

    Args:
        model: a Keras model of any kind.
        layer: a path or name, `"last_conv"`, an integer index into `model.layers`, or a
            `keras.layers.Layer` that belongs to the model.

    Returns:
        The `LayerInfo` of the layer.

    Raises:
        ValueError: if no layer matches (the message lists the convolution layers and all
            layers), or a bare name is ambiguous.
    """
    infos = list(iter_layers(model, ops=True))
    if isinstance(layer, LayerInfo):
        layer = layer.layer
    if isinstance(layer, keras.layers.Layer) or hasattr(layer, "symbolic_call"):
        for info in infos:
            if info.layer is layer:
                return info
        raise ValueError(
            f"Layer '{layer.name}' is not part of model '{model.name}'. "
            f"Available conv layers: {_describe(conv_layers(model))}."
        )
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        top = _children(model)
        if not -len(top) <= layer < len(top):
            raise ValueError(
                f"Layer index {layer} is out of range: model '{model.name}' has "
                f"{len(top)} top-level layers."
            )
        return find_layer(model, top[layer])
    if not isinstance(layer, str):
        raise TypeError(f"A layer is given by name, index or object; got {type(layer).__name__}.")
    if layer == "feature_map":
        path = _feature_map(model)
        if path is not None:
            return find_layer(model, path)
        layer = "last_conv"
    if layer == "last_conv":
        return find_layers(model, "all_conv")[-1]
    exact = [i for i in infos if i.path == layer]
    if exact:
        return exact[0]
    by_name = [i for i in infos if i.name == layer]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise ValueError(
            f"Layer name '{layer}' is ambiguous in model '{model.name}'; use one of the "
            f"paths {[i.path for i in by_name]}."
        )
    names = ", ".join(repr(i.path) for i in infos if is_layer(i.layer)) or "none"
    raise ValueError(
        f"No layer named '{layer}' in model '{model.name}'. Available conv layers: "
        f"{_describe(conv_layers(model))}. All layers: {names}."
    )


def find_layers(model: keras.Model, layers: Any) -> list[LayerInfo]:
    """Resolves a list of layer references (or one, or `"all_conv"`) with `find_layer`."""
    if layers is None or (isinstance(layers, str) and layers == "all_conv"):
        convs = conv_layers(model)
        if not convs:
            raise ValueError(
                f"Model '{model.name}' has no 2-D convolution layer; layers are: "
                f"{_describe(list(iter_layers(model)))}."
            )
        return convs
    if isinstance(layers, (str, int, keras.layers.Layer, LayerInfo)):
        layers = [layers]
    return [find_layer(model, layer) for layer in layers]


def input_shape(model: keras.Model) -> tuple | None:
    """The shape of the model's single input without the batch axis, or None if unknown.

    Raises:
        ValueError: if the model has several inputs.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    if len(inputs) > 1:
        raise ValueError(
            f"Model '{model.name}' has {len(inputs)} inputs; keras-cnnvis explains "
            "single-input image models. Wrap it in a model with one image input."
        )
    return tuple(inputs[0].shape[1:])


def check_image_model(model: keras.Model, shape: tuple | None = None) -> tuple:
    """Checks that the model takes one channels-last image batch and returns its shape.

    Args:
        model: the model.
        shape: the per-example input shape when the model cannot tell (subclassed).
            Defaults to None (use `model.inputs`).

    Returns:
        The input shape `(H, W, C)` (entries may be None for variable sizes).

    Raises:
        ValueError: if the input is not a rank-3 image `(H, W, C)` per example.
    """
    model_shape = input_shape(model)
    shape = tuple(shape) if shape is not None else model_shape
    if shape is None:
        raise ValueError(
            f"Cannot tell the input shape of model '{model.name}' (a subclassed model "
            "that was never called). Pass probe images or call the model once first."
        )
    if len(shape) != 3:
        raise ValueError(
            f"Model '{model.name}' takes inputs of shape {shape} per example; keras-cnnvis "
            "needs images of shape (height, width, channels)."
        )
    return shape


def _feature_map(model: keras.Model) -> str | None:
    """The anatomy's feature map of `model`, or None when it cannot be read."""
    from keras_cnnvis.model.anatomy import model_anatomy

    try:
        return model_anatomy(model).feature_map
    except (ValueError, RuntimeError, TypeError):
        return None
