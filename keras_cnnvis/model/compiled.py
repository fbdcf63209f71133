"""Compiled model calls: per-instance `tf.function`s, batch functions traced once for every
batch size, and feature extractors that return chosen layers' outputs with the model's output.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.calls import capture_outputs
from keras_cnnvis.model.layers import find_layers


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
