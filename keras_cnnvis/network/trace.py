"""What every layer of a model computes for one image: one compiled pass that records, in
execution order and through nested models and branches, each call's output and the graph.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.inputs import check_images
from keras_cnnvis.model.anatomy import model_anatomy
from keras_cnnvis.model.calls import wrap_calls
from keras_cnnvis.model.compiled import BatchFunction
from keras_cnnvis.model.layers import input_shape as model_input_shape

INPUT_TYPE = "InputLayer"
_TRACERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# The configuration entries the Network page and the unit breakdowns read.
_CONFIG_KEYS = (
    "filters",
    "units",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "depth_multiplier",
    "groups",
    "activation",
    "use_bias",
    "pool_size",
    "axis",
    "epsilon",
    "center",
    "scale",
    "offset",
    "rate",
    "size",
    "interpolation",
    "cropping",
    "target_shape",
    "keepdims",
    "max_value",
    "negative_slope",
    "threshold",
)


@dataclass
class LayerRecord:
    """What one layer (or operation such as `x + y`) computed for one image.

    Attributes:
        path: the layer's path (nested models joined by `/`; `"<path>#k"` for the k-th
            call of a layer called several times); the first record is the model input,
            named after its `InputLayer` (or `"input"`).
        type: the class name (`"Conv2D"`, `"Add"`, `"InputLayer"`, ...).
        config: its essential configuration (kernel size, strides, padding, activation,
            units, pool size, ...), plain JSON values.
        inputs: the paths of the records whose outputs it reads (the graph's edges).
        output: its float32 output for the image, without the batch axis.
        layer: the layer or operation itself (None for the input).
        input_value: the first input as the layer received it, only when that is not the
            output of `inputs[0]` (an untracked operation such as `tf.nn.relu` ran between
            them in a subclassed model's `call`); else None.
    """

    path: str
    type: str
    config: dict
    inputs: list
    output: np.ndarray
    layer: Any = field(default=None, repr=False, compare=False)
    input_value: np.ndarray | None = field(default=None, repr=False, compare=False)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):  # a serialised custom activation or initializer
        return str(value.get("config", {}).get("name") or value.get("class_name") or value)
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def layer_config(layer: Any) -> dict:
    """The essential configuration of a layer or operation (see `LayerRecord.config`)."""
    try:
        config = layer.get_config()
    except (NotImplementedError, AttributeError, TypeError):
        config = {}
    out = {k: _plain(config[k]) for k in _CONFIG_KEYS if k in config}
    activation = getattr(layer, "activation", None)
    if callable(activation) and "activation" in out:
        out["activation"] = _plain(keras.activations.serialize(activation))
    return out


def input_name(model: keras.Model) -> str:
    """The name of the model's input layer, or `"input"` when it has none (subclassed)."""
    for op in getattr(model, "operations", None) or ():
        if isinstance(op, keras.layers.InputLayer):
            return op.name
    return "input"


class NetworkTracer:
    """Runs images through a model and returns every layer's output with the graph.

    The graph (which call reads which) comes from the model's anatomy (one traced pass);
    the outputs from one compiled pass per batch that records every leaf call, so the
    tracer follows the live model's weights during `fit` and traces once per image shape.
    A model with a layer name TensorFlow graphs refuse (spaces, `<`, quotes) runs eagerly.

    Example:

    ```python
    tracer = NetworkTracer(model)
    records = tracer(images)[0]   # the records of the first image
    ```

    Args:
        model: a single-input image model of any kind (Functional, Sequential, nested,
            subclassed).
        input_shape: `(height, width, channels)` when the model does not fix its size.
            Defaults to None (the model's input shape).
    """

    def __init__(self, model: keras.Model, input_shape: Sequence[int] | None = None):
        self._model = weakref.ref(model)
        self._keep = model  # None in `network_trace`'s cache, which must not keep models alive
        self.anatomy = model_anatomy(model, input_shape)
        self.nodes = self.anatomy.nodes
        self.input_path = input_name(model)
        if any(node.path == self.input_path for node in self.nodes):
            self.input_path = f"{self.input_path} (input)"
        layers: list = []
        for node in self.nodes:
            if not any(node.layer is seen for seen in layers):
                layers.append(node.layer)
        self._layers = layers
        self._configs = [layer_config(node.layer) for node in self.nodes]
        self._fn = BatchFunction(self._forward)
        self._eager = False

    @property
    def model(self) -> keras.Model:
        """The traced model."""
        model = self._model()
        if model is None:
            raise RuntimeError("The model of this NetworkTracer no longer exists.")
        return model

    @property
    def paths(self) -> list:
        """Record paths in execution order, the input first; the k-th call (k >= 2) of a
        layer called several times is `"<path>#k"`."""
        paths, calls = [self.input_path], {}
        for node in self.nodes:
            calls[node.path] = calls.get(node.path, 0) + 1
            paths.append(node.path if calls[node.path] == 1 else f"{node.path}#{calls[node.path]}")
        return paths

    def _forward(self, x):
        outputs, strays = [], []
        known = {id(x)}

        def make(layer, original):
            def wrapped(*args, **kwargs):
                first = args[0] if args else next(iter(kwargs.values()), None)
                out = original(*args, **kwargs)
                tensors = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
                if tensors:
                    leaves = [t for t in tf.nest.flatten(first) if tf.is_tensor(t)]
                    direct = all(id(t) in known for t in leaves[:1])
                    strays.append(leaves[0] if leaves and not direct else tf.zeros(()))
                    outputs.append(tensors[0])
                    known.update(id(t) for t in tensors)
                return out

            return wrapped

        with wrap_calls(self._layers, make):
            self.model(x, training=False)
        return outputs, strays

    def __call__(self, images: Any) -> list:
        """Traces a batch of images.

        Args:
            images: `(N, H, W, C)` images preprocessed as the model expects.

        Returns:
            One list of `LayerRecord`s per image, in execution order, the input first.

        Raises:
            ValueError: for images that do not fit the model's input.
            RuntimeError: if the compiled pass called other layers than the traced one
                (a model whose calls depend on the input values).
        """
        images = check_images(images, self.model, "images to trace")
        shape = self.anatomy.input_shape
        if tuple(images.shape[1:]) != tuple(shape):
            raise ValueError(
                f"The images have shape {images.shape[1:]}; this tracer was built for "
                f"{tuple(shape)}. Build a NetworkTracer with input_shape={images.shape[1:]}."
            )
        x = tf.convert_to_tensor(images)
        if not self._eager:
            try:
                outputs, strays = self._fn(x)
            except ValueError as error:
                if "scope name" not in str(error):
                    raise
                self._eager = True  # a layer name TensorFlow graphs refuse (`<`, spaces)
        if self._eager:
            outputs, strays = self._forward(x)
        if len(outputs) != len(self.nodes):
            raise RuntimeError(
                f"The compiled pass of model '{self.model.name}' made {len(outputs)} layer "
                f"calls where its anatomy has {len(self.nodes)}; network_trace needs a "
                "model that calls the same layers for every input."
            )
        outputs = [np.asarray(tf.cast(o, tf.float32)) for o in outputs]
        strays = [np.asarray(tf.cast(s, tf.float32)) for s in strays]
        return [self._records(i, images[i], outputs, strays) for i in range(len(images))]

    def _records(self, i: int, image: np.ndarray, outputs: list, strays: list) -> list:
        paths = self.paths
        first = LayerRecord(self.input_path, INPUT_TYPE, {}, [], image.astype(np.float32))
        records = [first]
        for k, (node, config, out, stray) in enumerate(
            zip(self.nodes, self._configs, outputs, strays)
        ):
            records.append(
                LayerRecord(
                    paths[k + 1],
                    node.kind,
                    dict(config),
                    [paths[j + 1] for j in node.inputs],
                    out[i],
                    node.layer,
                    stray[i] if stray.ndim else None,
                )
            )
        return records


def network_trace(model: keras.Model, image: Any, input_shape: Sequence[int] | None = None) -> list:
    """Every layer's output for one image, in execution order, with the graph.

    One compiled forward pass (inference mode) records each layer's and operation's
    output, through nested models and branches; the graph (which outputs each call
    reads) comes from the model's anatomy. A layer called twice gives two records, the
    second with the path `"<path>#2"`.

    Example:

    ```python
    for record in network_trace(model, x_val[0]):
        print(record.path, record.type, record.inputs, record.output.shape)
    ```

    Args:
        model: a single-input image model of any kind.
        image: one image `(H, W, C)` (or a batch of one) preprocessed as the model expects.
        input_shape: `(height, width, channels)` for a model that does not fix its input
            size. Defaults to None (the model's input shape, else the image's).

    Returns:
        A list of `LayerRecord(path, type, config, inputs, output)`, the model input first;
        outputs are float32 numpy arrays without the batch axis.

    Raises:
        ValueError: for an image that is not one image the model takes.
    """
    images = check_images(image, model, "image", single=True)
    if len(images) != 1:
        raise ValueError(
            f"network_trace takes one image; got a batch of {len(images)}. Pass images[i], "
            "or use NetworkTracer(model)(images) for a batch."
        )
    if input_shape is None:
        fixed = model_input_shape(model)
        if fixed is None or any(v is None for v in fixed):
            input_shape = images.shape[1:]
    key = tuple(input_shape or model_input_shape(model))
    per_model = _TRACERS.setdefault(model, {})
    if key not in per_model:
        per_model[key] = NetworkTracer(model, key)
        per_model[key]._keep = None  # the cache is weak: it must not keep the model alive
    return per_model[key](images)[0]
