"""Model plumbing shared by every method: finding layers, capturing intermediate outputs,
feature extractors that share weights with the live model, and temporary layer patches.

Works on Functional, Sequential, nested (a model used as a layer) and subclassed models.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
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
        raise TypeError(f"A layer is given by name, index or object; got {type(layer).__name__}.")
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


def restore_calls(saved: list) -> None:
    """Undoes `layer.call` wrappers: `saved` holds `(layer, had_own_call, original)` in
    wrapping order; instance attributes are restored, class methods uncovered."""
    for layer, had_own, original in reversed(saved):
        if had_own:
            layer.call = original
        else:
            del layer.call
    saved.clear()


def _first_input(args: tuple, kwargs: dict) -> Any:
    """The first input of a layer call (its first positional or keyword argument)."""
    return args[0] if args else next(iter(kwargs.values()))


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
        capture: `"output"` records each layer's output, `"input"` the first input of its
            call (e.g. the input of the last Dense layer). Defaults to `"output"`.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: Any,
        transform: Callable[[str, Any], Any] | None = None,
        capture: str = "output",
    ):
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input'; got {capture!r}.")
        self.infos = find_layers(model, layers)
        self.transform = transform
        self.capture = capture
        self.outputs: dict[str, Any] = {}
        self._saved: list = []

    def __enter__(self) -> "capture_outputs":
        for info in self.infos:
            layer = info.layer
            had_own = "call" in vars(layer)
            original = layer.call

            def wrapped(*args, __orig=original, __path=info.path, **kwargs):
                if self.capture == "input":
                    self.outputs[__path] = _first_input(args, kwargs)
                out = __orig(*args, **kwargs)
                if self.transform is not None:
                    out = self.transform(__path, out)
                if self.capture == "output":
                    self.outputs[__path] = out
                return out

            self._saved.append((layer, had_own, original))
            layer.call = wrapped
        return self

    def __exit__(self, *exc) -> None:
        restore_calls(self._saved)

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


def instance_function(method: Callable, **kwargs) -> Callable:
    """`tf.function` of a bound method, tracked per instance.

    TensorFlow's retracing detector keys functions by their code object, so the single
    trace of each of many instances (one extractor per callback) would add up to a false
    "excessive retracing" warning; a partial has no shared code object. AutoGraph is off
    by default: these functions call Keras layers with Python control flow only, and
    converting their source (and every helper they call) took seconds per callback.

    Args:
        method: a bound method, e.g. `self._forward`.
        **kwargs: passed to `tf.function` (e.g. `input_signature`, `autograph=True`).

    Returns:
        The compiled function.
    """
    kwargs.setdefault("autograph", False)
    return tf.function(functools.partial(method.__func__, method.__self__), **kwargs)


class BatchFunction:
    """A `tf.function` of one image batch, traced once for every batch size.

    With `reduce_retracing` alone a function called with batches of 64 and then a last
    batch of 16 (or a 1-image check before training) traces twice; here the first call of
    each image shape traces for `(None, *shape)` and every batch size reuses it.

    Example:

    ```python
    fn = BatchFunction(lambda x: model(x, training=False))
    fn(tf.zeros((64, 32, 32, 3)))  # traces once
    fn(tf.zeros((16, 32, 32, 3)))  # no new trace
    ```

    Args:
        fn: a function of one batch tensor (a bound method is compiled per instance,
            see `instance_function`).
    """

    def __init__(self, fn: Callable):
        if inspect.ismethod(fn):
            self.function = instance_function(fn, reduce_retracing=True)
        else:
            self.function = tf.function(fn, reduce_retracing=True, autograph=False)
        self._shapes: set = set()

    def __call__(self, x):
        x = tf.convert_to_tensor(x)
        shape = tuple(x.shape[1:])
        if shape not in self._shapes:
            self.function.get_concrete_function(tf.TensorSpec((None,) + shape, x.dtype))
            self._shapes.add(shape)
        return self.function(x)


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

    def __init__(
        self, model: keras.Model, layers: Any, batch_size: int = 64, capture: str = "output"
    ):
        self.model = model
        self.infos = find_layers(model, layers)
        self.batch_size = int(batch_size)
        self.capture = capture
        self._call = predict_fn(model)
        self._fn = BatchFunction(self._forward)

    @property
    def paths(self) -> list[str]:
        return [info.path for info in self.infos]

    def _forward(self, x):
        layers = [i.layer for i in self.infos]
        with capture_outputs(self.model, layers, capture=self.capture) as cap:
            out = self._call(x)
        return cap.ordered(), out

    def eager(self, images: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """Like calling the extractor, but run eagerly (nothing is traced): for checks on
        a few images before training, when the compiled function may never be needed."""
        feats, out = self._forward(tf.convert_to_tensor(np.asarray(images, np.float32)))
        return [np.asarray(f, np.float32) for f in feats], np.asarray(out, np.float32)

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


def forward_until(model: keras.Model, layers: Any, inputs: Any, capture: str = "output") -> list:
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
                first = _first_input(args, kwargs)
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
        model(inputs, training=False)
    except _StopForward:
        pass
    finally:
        restore_calls(saved)
    missing = [info.path for info in infos if info.path not in recorded]
    if missing:
        raise RuntimeError(f"Layers {missing} were not called during the forward pass.")
    return [recorded[info.path] for info in infos]


# -- attribution plumbing: ReLU-gradient overrides, logits, one compiled gradient seam ----
# Every attribution method (keras_cnnvis.attribution) computes its scores and gradients
# through `gradient_function`; temporary model changes go through `model_overrides`.

RELU_OVERRIDES = ("guided", "deconvnet")
_OUTPUT_SQUASHERS = ("softmax", "sigmoid")
_CHECK_MARK = "keras-cnnvis: "


@tf.custom_gradient
def _rectified_gradient(y):
    """Identity forward; the backward pass lets only positive gradient through."""
    return tf.identity(y), lambda dy: tf.nn.relu(dy)


def _guided(fn: Callable) -> Callable:
    # Guided backprop (Springenberg 2015): the normal ReLU backward (forward mask) applied
    # to the rectified incoming gradient: grad * (x > 0) * (grad > 0).
    def act(x, *args, **kwargs):
        return _rectified_gradient(fn(x, *args, **kwargs))

    return act


def _deconvnet(fn: Callable) -> Callable:
    # Deconvnet (Zeiler & Fergus 2014): the backward pass rectifies the signal and ignores
    # the forward mask: relu(grad).
    def act(x, *args, **kwargs):
        @tf.custom_gradient
        def inner(t):
            return fn(t, *args, **kwargs), lambda dy: tf.nn.relu(dy)

        return inner(x)

    return act


def _fn_name(fn: Any) -> str | None:
    return getattr(fn, "__name__", None)


def relu_sites(model: keras.Model) -> list[tuple[keras.layers.Layer, str]]:
    """Where a model applies ReLU: `(layer, attribute)` pairs that an override can patch.

    Covers ReLU given as an activation argument (`Conv2D(..., activation="relu")`,
    `Dense`, `Activation("relu")`: attribute `"activation"`) and `keras.layers.ReLU`
    layers (attribute `"call"`), nested models included. A ReLU applied inside a
    subclassed model's own `call` (e.g. `tf.nn.relu(x)`) is invisible here.
    """
    sites = []
    for info in iter_layers(model):
        layer = info.layer
        if isinstance(layer, keras.layers.ReLU):
            sites.append((layer, "call"))
        elif _fn_name(getattr(layer, "activation", None)) == "relu":
            sites.append((layer, "activation"))
    return sites


def _output_squasher(model: keras.Model) -> tuple[keras.layers.Layer, str] | None:
    """The final softmax/sigmoid of a single-output model as `(layer, attribute)`, if any."""
    try:
        if len(model.outputs) != 1:
            return None
    except (AttributeError, ValueError):
        pass
    leaves = [i.layer for i in iter_layers(model) if not isinstance(i.layer, keras.Model)]
    if not leaves:
        return None
    last = leaves[-1]
    if isinstance(last, keras.layers.Softmax):
        return last, "call"
    if _fn_name(getattr(last, "activation", None)) in _OUTPUT_SQUASHERS:
        return last, "activation"
    return None


def _identity_call(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def model_overrides(
    model: keras.Model, relu: str | None = None, logits: bool = False
) -> Iterator[None]:
    """Temporarily changes how a model computes, for attribution; always undone.

    `relu="guided"` or `"deconvnet"` replaces the backward pass of every ReLU (activation
    argument or ReLU layer, nested models included) by the guided-backprop rule
    `grad * (x > 0) * (grad > 0)` or the deconvnet rule `relu(grad)`; the forward pass is
    unchanged. `logits=True` makes a final softmax or sigmoid linear, so scores are the
    pre-activation class scores; "final" is the last layer in the model's layer order
    (for subclassed models, the order the layers were assigned). The patches are installed on the layer instances and
    removed in `finally`, also when the block raises. Compiled functions traced inside the
    block keep the modified gradient; call them inside the block too (a retrace outside
    would see the plain model).

    Example:

    ```python
    with model_overrides(model, relu="guided"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = model(x)[:, 3]
        guided = tape.gradient(score, x)
    ```

    Args:
        model: the model.
        relu: `None`, `"guided"` or `"deconvnet"`. Defaults to None.
        logits: make a final softmax/sigmoid linear. Defaults to False.

    Raises:
        ValueError: for an unknown `relu` mode, or a `relu` mode on a model without any
            ReLU that can be overridden.
    """
    if relu is not None and relu not in RELU_OVERRIDES:
        raise ValueError(f"relu must be None or one of {RELU_OVERRIDES}; got {relu!r}.")
    patches = []
    if relu is not None:
        sites = relu_sites(model)
        if not sites:
            raise ValueError(
                f"Model '{model.name}' has no ReLU given as an activation argument or a "
                f"ReLU layer, so '{relu}' gradients would equal the plain gradient. Build "
                "the model with activation='relu' or keras.layers.ReLU layers."
            )
        wrap = _guided if relu == "guided" else _deconvnet
        patches += [(layer, attr, wrap(getattr(layer, attr))) for layer, attr in sites]
    if logits:
        site = _output_squasher(model)
        if site is not None:
            layer, attr = site
            linear = _identity_call if attr == "call" else keras.activations.linear
            patches = [p for p in patches if p[0] is not layer or p[1] != attr]
            patches.append((layer, attr, linear))
    with contextlib.ExitStack() as stack:
        for layer, attr, value in patches:
            stack.enter_context(patched(layer, attr, value))
        yield


def check_in_graph(condition: Any, message: str) -> Any:
    """An in-graph assertion whose failure `GradientFunction` turns into a ValueError."""
    return tf.debugging.Assert(condition, [tf.constant(_CHECK_MARK + message)])


@dataclass
class GradientResult:
    """What one `GradientFunction` call returns (float32 numpy, batch-first).

    Attributes:
        scores: `(N,)` the explained scores.
        grads: gradients of each score w.r.t. the input or hidden layer, or None.
        hidden: the captured layer outputs, in the order requested.
        aux: the second value returned by the score function (e.g. the class index each
            score belongs to), or None.
    """

    scores: np.ndarray
    grads: np.ndarray | None
    hidden: list
    aux: np.ndarray | None


class GradientFunction:
    """A compiled "score, and its gradient w.r.t. the input or a hidden layer" function.

    Built by `gradient_function` (use that: it caches one instance per model and
    configuration). The model is called in inference mode under `model_overrides`; the
    compiled function is traced once per input shape (batch size is free) and holds only a
    weak reference to the model, so it sees weight updates and never keeps a model alive.

    Args:
        model: the model.
        score_fn: `fn(outputs, hidden, *args) -> scores (N,)` or `(scores, aux)`, traced;
            `hidden` maps captured layer paths to their outputs.
        wrt: `"input"`, a layer reference (its output), or None (forward only).
        capture: layer references whose outputs are captured. Defaults to ().
        relu: ReLU override (see `model_overrides`). Defaults to None.
        logits: make a final softmax/sigmoid linear. Defaults to False.
        image_shape: per-example input shape. Defaults to None (from the model).
        arg_specs: `(shape_without_batch, dtype)` per extra per-example argument.
            Defaults to ().
    """

    def __init__(
        self,
        model: keras.Model,
        score_fn: Callable,
        wrt: Any = "input",
        capture: Any = (),
        relu: str | None = None,
        logits: bool = False,
        image_shape: tuple | None = None,
        arg_specs: Sequence[tuple] = (),
    ):
        import weakref

        self._model = weakref.ref(model)
        self._name = model.name
        self.score_fn = score_fn
        self.capture = [] if not capture else find_layers(model, capture)
        self.wrt = wrt if wrt in (None, "input") else find_layer(model, wrt).path
        if self.wrt not in (None, "input") and self.wrt not in self.paths:
            self.capture.append(find_layer(model, wrt))
        self.relu = relu
        self.logits = bool(logits)
        shape = tuple(image_shape) if image_shape is not None else input_shape(model)
        signature = [tf.TensorSpec((None, *shape), tf.float32)]
        signature += [tf.TensorSpec((None, *s), d) for s, d in arg_specs]
        self.function = instance_function(self._compute, input_signature=signature)

    @property
    def paths(self) -> list[str]:
        return [info.path for info in self.capture]

    def _compute(self, x, *args):
        model = self._model()
        if model is None:
            raise RuntimeError("The model of this gradient function no longer exists.")
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            with capture_outputs(model, [i.layer for i in self.capture]) as cap:
                outputs = model(x, training=False)
            hidden = {path: value for path, value in zip(self.paths, cap.ordered())}
            result = self.score_fn(outputs, hidden, *args)
            scores, aux = result if isinstance(result, tuple) else (result, None)
            scores = tf.cast(scores, tf.float32)
            if scores.shape.rank != 1:
                raise ValueError(
                    f"A score function must return one score per example (shape (N,)); "
                    f"got shape {scores.shape}."
                )
            total = tf.reduce_sum(scores)
        grads = None
        if self.wrt is not None:
            source = x if self.wrt == "input" else hidden[self.wrt]
            grads = tape.gradient(total, source)
            if grads is None:
                where = "the input" if self.wrt == "input" else f"layer '{self.wrt}'"
                raise ValueError(
                    f"The explained score does not depend on {where} of model "
                    f"'{self._name}'; choose a target computed after it."
                )
            grads = tf.cast(grads, tf.float32)
        out = {"scores": scores, "hidden": [tf.cast(hidden[p], tf.float32) for p in self.paths]}
        if grads is not None:
            out["grads"] = grads
        if aux is not None:
            out["aux"] = aux
        return out

    def __call__(self, images: Any, *args: Any, batch_size: int = 64) -> GradientResult:
        """Runs the compiled function over `images` in batches.

        Args:
            images: float32 `(N, H, W, C)` numpy array.
            *args: per-example arrays (leading axis N) passed to the score function.
            batch_size: examples per compiled call. Defaults to 64.

        Returns:
            A `GradientResult` of float32 numpy arrays.
        """
        model = self._model()
        if model is None:
            raise RuntimeError("The model of this gradient function no longer exists.")
        images = np.asarray(images, np.float32)
        if len(images) == 0:
            raise ValueError("No images given: pass a batch of at least one image.")
        parts: dict[str, list] = {}
        batch_size = max(1, int(batch_size))
        try:
            with model_overrides(model, self.relu, self.logits):
                for start in range(0, len(images), batch_size):
                    stop = start + batch_size
                    chunk = [tf.convert_to_tensor(images[start:stop])]
                    chunk += [tf.convert_to_tensor(np.asarray(a)[start:stop]) for a in args]
                    for key, value in self.function(*chunk).items():
                        parts.setdefault(key, []).append(value)
        except tf.errors.InvalidArgumentError as error:
            if _CHECK_MARK in str(error):
                message = str(error).split(_CHECK_MARK, 1)[1].split("\n")[0]
                message = message.replace("\\'", "'").rstrip("'\"]) ")
                raise ValueError(message) from None
            raise

        def cat(key):
            if key not in parts:
                return None
            return np.concatenate([np.asarray(v) for v in parts[key]])

        hidden = [
            np.concatenate([np.asarray(v[i]) for v in parts["hidden"]])
            for i in range(len(self.capture))
        ]
        return GradientResult(
            cat("scores"),
            cat("grads"),
            hidden,
            cat("aux"),
        )


_GRADIENT_CACHE_SIZE = 32


def gradient_function(
    model: keras.Model,
    score_fn: Callable,
    wrt: Any = "input",
    capture: Any = (),
    relu: str | None = None,
    logits: bool = False,
    image_shape: tuple | None = None,
    arg_specs: Sequence[tuple] = (),
) -> GradientFunction:
    """The cached compiled gradient function of `model` for one configuration.

    The single seam through which every attribution method calls a model: one compiled
    function per (model, score function, wrt, captured layers, override, logits, input
    shape, argument specs). The cache is keyed weakly by the model (dropped with it) and
    keeps the most recent 32 configurations per model, so repeated calls never retrace and
    new score functions (e.g. inline lambdas) cannot grow it without bound.

    Example:

    ```python
    fn = gradient_function(model, lambda out, hidden: out[:, 3])
    result = fn(images)            # result.scores (N,), result.grads (N, H, W, C)
    ```

    Args:
        model: the model (single image input).
        score_fn: `fn(outputs, hidden, *args)` returning `(N,)` scores or `(scores, aux)`.
            Must be hashable; equal score functions share the compiled function.
        wrt: `"input"`, a layer reference, or None for a forward pass only.
            Defaults to `"input"`.
        capture: layers whose outputs are captured and returned. Defaults to ().
        relu: `None`, `"guided"` or `"deconvnet"`. Defaults to None.
        logits: make a final softmax/sigmoid linear. Defaults to False.
        image_shape: per-example input shape `(H, W, C)`. Defaults to None (the model's).
        arg_specs: `((shape_without_batch, dtype), ...)` of the extra per-example
            arguments. Defaults to ().

    Returns:
        A `GradientFunction`.
    """
    shape = tuple(image_shape) if image_shape is not None else input_shape(model)
    if shape is None or any(s is None for s in shape):
        raise ValueError(
            f"The input shape of model '{model.name}' is not fully known; pass image_shape."
        )
    capture_paths = tuple(i.path for i in find_layers(model, capture)) if capture else ()
    wrt_key = wrt if wrt in (None, "input") else find_layer(model, wrt).path
    specs = tuple((tuple(s), tf.as_dtype(d).name) for s, d in arg_specs)
    key = (score_fn, wrt_key, capture_paths, relu, bool(logits), shape, specs)
    cache = _GRADIENT_CACHES.setdefault(model, {})
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key]
    fn = GradientFunction(model, score_fn, wrt, capture, relu, logits, shape, arg_specs)
    cache[key] = fn
    while len(cache) > _GRADIENT_CACHE_SIZE:
        cache.pop(next(iter(cache)))
    return fn


def _new_gradient_cache():
    import weakref

    return weakref.WeakKeyDictionary()


_GRADIENT_CACHES = _new_gradient_cache()
