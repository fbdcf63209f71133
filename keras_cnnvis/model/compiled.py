"""Compiled model calls: per-instance `tf.function`s, batch functions traced once for every
batch size, and feature extractors that return chosen layers' outputs with the model's output.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.calls import capture_outputs
from keras_cnnvis.model.layers import find_layers, input_shape, iter_layers, output_shape

BATCH_BYTES = 96 * 2**20
"""The byte budget of one forward batch in `batch_size_for`: the batch's float32 input plus
its largest layer output. Enough for the demo CNN at 64x64 (0.3 MB per image, 80 MB at 256)
to reach `MAX_BATCH`; a 224x224 ResNet50 (3.9 MB per image: the input and the 114x114x64
padded map) gets 25, a few hundred MB with the two or three maps a residual block holds at
once, where 256 copies (as occlusion used) held about 1 GB per map."""

MAX_BATCH = 256
"""The most images `batch_size_for` puts in one forward pass. Measured on the demo CNN
(3200 images, 2 shared CPU cores, `benchmarks/model_time.py --sweep`): batches of 128 to 800
take 0.88-0.93x the time of batches of 64 at a load of 0.6-1.5 and the same time at a load
of 2-3; 512 and 800 are no faster than 256 within that noise."""

DEFAULT_BATCH = 64
"""What `batch_size_for` returns when a model's layer shapes are unknown (a subclassed
model that was never built symbolically): the batch size used before the byte budget."""


_ACTIVATIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _symbolic_sizes(model: keras.Model) -> list[int] | None:
    """Elements of every layer output from symbolic shapes; None if any is unknown."""
    sizes = []
    for info in iter_layers(model):
        if isinstance(info.layer, keras.Model):
            continue  # its layers are visited
        out = output_shape(info.layer)
        if out is None or any(d is None for d in out[1:]):
            return None
        sizes.append(int(np.prod(out[1:])))
    return sizes or None


def _traced_sizes(model: keras.Model, shape: tuple) -> list[int] | None:
    """Elements of every layer output of one traced example (`trace_graph`)."""
    from keras_cnnvis.model.graph import trace_graph

    try:
        nodes = trace_graph(model, shape)
    except Exception:  # a model the trace cannot follow: the caller falls back
        return None
    sizes = [int(np.prod(n.shape)) for n in nodes if all(d is not None for d in n.shape)]
    return sizes or None


def example_bytes(
    model: keras.Model, image_shape: Any = None, backward: bool = False
) -> int | None:
    """Bytes of one float32 example's input plus its largest layer output, or with
    `backward` plus every layer output (what a backward pass keeps).

    The layer outputs come from the layers' symbolic shapes (nested models included) when
    they are all known, else from one traced example (`trace_graph`: models of any input
    size, subclassed models). Kept per model and image shape.

    Args:
        model: a single-input image model.
        image_shape: `(height, width, channels)`. Defaults to None (the model's).
        backward: count every layer output, not the largest. Defaults to False.

    Returns:
        The byte count, or None when the image shape is unknown or the model cannot be
        traced.
    """
    shape = tuple(image_shape) if image_shape is not None else input_shape(model)
    if shape is None or any(s is None for s in shape):
        return None
    shape = tuple(int(s) for s in shape)
    known = _ACTIVATIONS.setdefault(model, {})
    if shape not in known:
        sizes = _symbolic_sizes(model) if input_shape(model) == shape else None
        known[shape] = sizes if sizes is not None else _traced_sizes(model, shape)
    sizes = known[shape]
    if sizes is None:
        return None
    return 4 * (int(np.prod(shape)) + (sum(sizes) if backward else max(sizes)))


def batch_size_for(
    model: keras.Model,
    image_shape: Any = None,
    budget: int = BATCH_BYTES,
    limit: int = MAX_BATCH,
    backward: bool = False,
) -> int:
    """Images per compiled call: as many as keep one batch under a byte budget.

    A batch's float32 input plus its largest layer output (`example_bytes`; with
    `backward`, every layer output, which a backward pass keeps) must fit in `budget`;
    never more than `limit` images, never fewer than one. Larger batches amortise the
    per-call and per-operation cost of small models and stay small for large ones.

    Example:

    ```python
    batch_size_for(build_demo_model((64, 64, 3)))                 # 256
    batch_size_for(build_demo_model((64, 64, 3)), backward=True)  # 86
    batch_size_for(keras.applications.ResNet50(weights=None))     # 25
    ```

    Args:
        model: a single-input image model.
        image_shape: `(height, width, channels)`. Defaults to None (the model's).
        budget: bytes per batch. Defaults to `BATCH_BYTES` (96 MiB).
        limit: the largest batch. Defaults to `MAX_BATCH` (256).
        backward: budget a forward and backward pass. Defaults to False.

    Returns:
        The batch size; `DEFAULT_BATCH` (64, capped by `limit`) when the layer shapes are
        unknown.
    """
    per_example = example_bytes(model, image_shape, backward)
    if per_example is None:
        return max(1, min(int(limit), DEFAULT_BATCH))
    return max(1, min(int(limit), int(budget) // per_example))


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


_FORWARD: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def forward_function(model: keras.Model) -> BatchFunction:
    """The model's inference call on one batch, compiled once per model and shared by every
    caller: the monitors that need a model's outputs on their images trace it once per
    input signature instead of once each.

    Example:

    ```python
    forward_function(model)(x_probe)  # traces for (None, *x_probe.shape[1:])
    forward_function(model)(x_val)    # the same function: no new trace
    ```

    Args:
        model: the model (held weakly: the cache never keeps it alive).

    Returns:
        A `BatchFunction` returning what `model(x, training=False)` returns.
    """
    fn = _FORWARD.get(model)
    if fn is None:
        ref = weakref.ref(model)
        fn = _FORWARD[model] = BatchFunction(lambda x: ref()(x, training=False))
    return fn


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
        batch_size: examples per compiled call. Defaults to None (`batch_size_for` the
            model: 256 for the demo CNN at 64x64, 25 for a 224x224 ResNet50).
        capture: `"output"` (the layers' outputs) or `"input"` (their inputs).
            Defaults to `"output"`.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: Any,
        batch_size: int | None = None,
        capture: str = "output",
    ):
        self.model = model
        self.infos = find_layers(model, layers)
        self.batch_size = None if batch_size is None else max(1, int(batch_size))
        self._auto: dict = {}  # image shape -> batch_size_for, when batch_size is None
        self.capture = capture
        self._call = predict_fn(model)
        self._fn = BatchFunction(self._forward)

    @property
    def paths(self) -> list[str]:
        return [info.path for info in self.infos]

    def batch_for(self, image_shape: Any) -> int:
        """Examples per compiled call for images of `image_shape` (`batch_size`, or
        `batch_size_for` the model when it is None)."""
        if self.batch_size is not None:
            return self.batch_size
        shape = tuple(int(s) for s in image_shape)
        if shape not in self._auto:
            self._auto[shape] = batch_size_for(self.model, shape)
        return self._auto[shape]

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
        batch = self.batch_for(images.shape[1:])
        for start in range(0, len(images), batch):
            chunk = tf.convert_to_tensor(images[start : start + batch])
            f, o = self._fn(chunk)
            for store, value in zip(feats, f):
                store.append(np.asarray(value, dtype=np.float32))
            outs.append(np.asarray(o, dtype=np.float32))
        return [np.concatenate(f) for f in feats], np.concatenate(outs)
