"""The one compiled gradient seam: "a score of the model's output, and its gradient with respect
to the input or a hidden layer", cached per model and configuration, batched.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.calls import capture_outputs
from keras_cnnvis.model.compiled import instance_function
from keras_cnnvis.model.layers import find_layer, find_layers, input_shape
from keras_cnnvis.model.overrides import model_overrides

_CHECK_MARK = "keras-cnnvis: "


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
_GRADIENT_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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


def value_and_gradients(fn: Callable[[], Any], variables: Sequence[Any]) -> tuple[Any, list]:
    """Evaluates `fn()` and its gradients with respect to `variables` (traceable).

    For optimisation loops that change variables of their own (synthesis images), not the
    model's: the model is called inside `fn` like anywhere else.

    Example:

    ```python
    value, (grad,) = value_and_gradients(lambda: objective(image_var), [image_var])
    ```

    Args:
        fn: a function of no arguments returning a scalar tensor.
        variables: the variables to differentiate with respect to.

    Returns:
        `(value, gradients)`, one gradient (or None) per variable.
    """
    with tf.GradientTape() as tape:
        value = fn()
    return value, tape.gradient(value, list(variables))
