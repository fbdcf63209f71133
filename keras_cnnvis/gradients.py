"""Model plumbing shared by every method: finding layers, capturing intermediate outputs,
feature extractors that share weights with the live model, and temporary layer patches.

Works on Functional, Sequential, nested (a model used as a layer) and subclassed models.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

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


def _children(layer: keras.layers.Layer) -> list:
    if isinstance(layer, keras.Model):
        # `model.layers` of a Functional model skips its InputLayer objects.
        return [c for c in layer.layers if not isinstance(c, keras.layers.InputLayer)]
    return []


def iter_layers(model: keras.Model) -> Iterator[LayerInfo]:
    """Yields every layer of `model` in forward order, descending into nested models.

    Nested models are yielded themselves and then their layers, with paths like
    `"base/block1_conv1"`.

    Example:

    ```python
    for info in iter_layers(model):
        print(info.path, type(info.layer).__name__)
    ```

    Args:
        model: a Keras model of any kind.

    Returns:
        An iterator of `LayerInfo(path, layer)`.
    """

    def walk(layer, prefix):
        for child in _children(layer):
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


def _describe(infos: Sequence[LayerInfo]) -> str:
    return ", ".join(f"'{i.path}' ({type(i.layer).__name__})" for i in infos) or "none"


def find_layer(model: keras.Model, layer: Any) -> LayerInfo:
    """Finds a layer by path, bare name, index or object.

    A bare name (e.g. `"conv1"`) matches a layer at any depth if it is unique; a path
    (`"base/conv1"`) matches exactly. `"last_conv"` selects the last convolution layer.

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
    infos = list(iter_layers(model))
    if isinstance(layer, LayerInfo):
        layer = layer.layer
    if isinstance(layer, keras.layers.Layer):
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
        raise TypeError(
            f"A layer is given by name, index or object; got {type(layer).__name__}."
        )
    if layer == "last_conv":
        convs = conv_layers(model)
        if not convs:
            raise ValueError(
                f"Model '{model.name}' has no 2-D convolution layer; layers are: "
                f"{_describe(infos)}."
            )
        return convs[-1]
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
    raise ValueError(
        f"No layer named '{layer}' in model '{model.name}'. Available conv layers: "
        f"{_describe(conv_layers(model))}. All layers: "
        f"{', '.join(repr(i.path) for i in infos) or 'none'}."
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


class capture_outputs(contextlib.AbstractContextManager):
    """Records the outputs of chosen layers while the model is called.

    Works by wrapping each layer's `call` on the instance for the duration of the block
    (always undone on exit), so it sees inside nested and subclassed models and shares
    every weight with the live model. Use it inside a `tf.function` or under a
    `tf.GradientTape`: the recorded tensors are part of the traced computation, so
    `tape.gradient(score, captured)` gives gradients with respect to a hidden layer.

    Example:

    ```python
    with capture_outputs(model, ["conv1"]) as cap:
        preds = model(images, training=False)
    conv1_maps = cap["conv1"]
    ```

    Args:
        model: the model that will be called in the block.
        layers: layer references (see `find_layer`).
        transform: optional `fn(path, output) -> output` applied to each captured output
            before it flows on (e.g. to add a perturbation). Defaults to None.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: Any,
        transform: Callable[[str, Any], Any] | None = None,
    ):
        self.infos = find_layers(model, layers)
        self.transform = transform
        self.outputs: dict[str, Any] = {}
        self._saved: list = []

    def __enter__(self) -> "capture_outputs":
        for info in self.infos:
            layer = info.layer
            had_own = "call" in vars(layer)
            original = layer.call

            def wrapped(*args, __orig=original, __path=info.path, **kwargs):
                out = __orig(*args, **kwargs)
                if self.transform is not None:
                    out = self.transform(__path, out)
                self.outputs[__path] = out
                return out

            self._saved.append((layer, had_own, original))
            layer.call = wrapped
        return self

    def __exit__(self, *exc) -> None:
        for layer, had_own, original in reversed(self._saved):
            if had_own:
                layer.call = original
            else:
                del layer.call
        self._saved.clear()

    def __getitem__(self, layer: Any) -> Any:
        path = layer if isinstance(layer, str) else None
        for info in self.infos:
            if path in (info.path, info.name) or info.layer is layer:
                if info.path not in self.outputs:
                    raise RuntimeError(
                        f"Layer '{info.path}' was not called during the forward pass."
                    )
                return self.outputs[info.path]
        raise KeyError(layer)

    def ordered(self) -> list:
        """The captured outputs in the order the layers were given."""
        return [self[info.layer] for info in self.infos]


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Sets `obj.name = value` for the block and always restores the original.

    Used for temporary gradient overrides (e.g. a guided ReLU as a layer's activation).
    """
    had_own = name in vars(obj)
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had_own:
            setattr(obj, name, original)
        else:
            try:
                delattr(obj, name)
            except AttributeError:
                setattr(obj, name, original)


def predict_fn(model: keras.Model) -> Callable:
    """Calls the model in inference mode on one input tensor and returns one output tensor.

    Raises:
        ValueError: if the model returns several outputs.
    """

    def call(x):
        out = model(x, training=False)
        if isinstance(out, dict) or isinstance(out, (list, tuple)) and len(out) != 1:
            raise ValueError(
                f"Model '{model.name}' has several outputs; choose one with a callable "
                "target, e.g. target=lambda outputs: outputs[0][:, 3]."
            )
        return out[0] if isinstance(out, (list, tuple)) else out

    return call


class FeatureExtractor:
    """Returns chosen intermediate outputs together with the final output, in one pass.

    The extractor calls the live model (no copy), so it always sees the current weights
    during `fit`. Calls are compiled once per input signature and batched.

    Example:

    ```python
    extractor = FeatureExtractor(model, ["conv1", "last_conv"])
    (conv1, last), preds = extractor(images)
    ```

    Args:
        model: a Keras model of any kind (single input).
        layers: layer references (see `find_layer`).
        batch_size: examples per compiled call. Defaults to 64.
    """

    def __init__(self, model: keras.Model, layers: Any, batch_size: int = 64):
        self.model = model
        self.infos = find_layers(model, layers)
        self.batch_size = int(batch_size)
        self._call = predict_fn(model)
        self._fn = tf.function(self._forward, reduce_retracing=True)

    @property
    def paths(self) -> list[str]:
        return [info.path for info in self.infos]

    def _forward(self, x):
        with capture_outputs(self.model, [i.layer for i in self.infos]) as cap:
            out = self._call(x)
        return cap.ordered(), out

    def __call__(self, images: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """Runs the model on `images`.

        Args:
            images: a batch `(N, ...)` as numpy or tensor.

        Returns:
            `(features, outputs)`: a list of float32 numpy arrays, one per layer, and the
            model's outputs.
        """
        images = np.asarray(images, dtype=np.float32)
        feats: list[list[np.ndarray]] = [[] for _ in self.infos]
        outs = []
        for start in range(0, len(images), self.batch_size):
            chunk = tf.convert_to_tensor(images[start : start + self.batch_size])
            f, o = self._fn(chunk)
            for store, value in zip(feats, f):
                store.append(np.asarray(value, dtype=np.float32))
            outs.append(np.asarray(o, dtype=np.float32))
        return [np.concatenate(f) for f in feats], np.concatenate(outs)


# -- truncated forward passes (added for max-activating patches and nearest neighbours) ---


class _StopForward(Exception):
    """Raised inside a wrapped layer call once every requested tensor has been recorded."""


def forward_until(
    model: keras.Model, layers: Any, inputs: Any, capture: str = "output"
) -> list:
    """Runs the model only as far as needed to get chosen layers' outputs (or inputs).

    The model is called in inference mode; the call is abandoned as soon as every
    requested tensor has been recorded, so layers after the deepest one never run. Inside
    a `tf.function` only the needed part of the model is traced: the compiled function is
    the truncated model, for Functional, Sequential, nested and subclassed models alike,
    sharing every weight with the live model.

    Example:

    ```python
    fn = tf.function(lambda x: forward_until(model, ["conv2"], x)[0])
    conv2_maps = fn(images)  # pools after conv2 and the head never run
    ```

    Args:
        model: the model (single input).
        layers: layer references (see `find_layer`).
        inputs: the input batch.
        capture: `"output"` records each layer's output; `"input"` records the first
            input of each layer's call and stops before the deepest layer runs (e.g. the
            input of the last Dense layer is the penultimate representation).
            Defaults to `"output"`.

    Returns:
        The recorded tensors, in the order the layers were given.

    Raises:
        ValueError: for an unknown `capture`.
        RuntimeError: if a layer is not called during the forward pass.
    """
    if capture not in ("output", "input"):
        raise ValueError(f"capture must be 'output' or 'input'; got {capture!r}.")
    infos = find_layers(model, layers)
    wanted = {info.path for info in infos}
    recorded: dict[str, Any] = {}
    saved: list = []

    def record(path, value):
        recorded.setdefault(path, value)
        if wanted.issubset(recorded):
            raise _StopForward()

    for info in infos:
        layer = info.layer
        if any(layer is s[0] for s in saved):
            continue
        original = layer.call
        paths = [i.path for i in infos if i.layer is layer]

        def wrapped(*args, __orig=original, __paths=paths, **kwargs):
            if capture == "input":
                first = args[0] if args else next(iter(kwargs.values()))
                for p in __paths:
                    record(p, first)
                return __orig(*args, **kwargs)
            out = __orig(*args, **kwargs)
            for p in __paths:
                record(p, out)
            return out

        saved.append((layer, "call" in vars(layer), original))
        layer.call = wrapped
    try:
        predict_fn(model)(inputs)
    except _StopForward:
        pass
    finally:
        for layer, had_own, original in reversed(saved):
            if had_own:
                layer.call = original
            else:
                del layer.call
    missing = [info.path for info in infos if info.path not in recorded]
    if missing:
        raise RuntimeError(f"Layers {missing} were not called during the forward pass.")
    return [recorded[info.path] for info in infos]
