"""What an attribution explains: the predicted class, a class per example, the true labels,
a callable score on the model output, or a hidden unit. Resolved into score functions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis import inputs
from keras_cnnvis.model import check_in_graph, find_layer
from keras_cnnvis.model.layers import output_shape

PREDICTED = -1  # class index meaning "the class the model predicts"


def _single_output(outputs: Any, model_name: str) -> Any:
    if isinstance(outputs, dict) or (isinstance(outputs, (list, tuple)) and len(outputs) != 1):
        raise ValueError(
            f"Model '{model_name}' has several outputs and no choice was made; pass a "
            "callable target that picks one, e.g. target=lambda outputs: outputs[0][:, 3]."
        )
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


class ClassScore:
    """Score function: the output for one class per example (index < 0 = predicted class).

    Returns `(scores, classes)`. A one-unit binary output is read as two classes, as in
    `keras_cnnvis.inputs.class_scores`: class 1 scores the unit and class 0 its opposite
    (1 - p for a probability, -z for a logit; `probability` says which the traced output
    is). All instances for one model name and reading are equal, so they share one
    compiled function.
    """

    def __init__(self, model_name: str, probability: bool = False):
        self.model_name = model_name
        self.probability = bool(probability)

    def reading(self, probability: bool) -> "ClassScore":
        """The same score for outputs that are probabilities (True) or logits (False)."""
        return ClassScore(self.model_name, probability)

    def __eq__(self, other):
        return (
            isinstance(other, ClassScore)
            and other.model_name == self.model_name
            and other.probability == self.probability
        )

    def __hash__(self):
        return hash(("class", self.model_name, self.probability))

    def __call__(self, outputs, hidden, classes):
        out = tf.cast(_single_output(outputs, self.model_name), tf.float32)
        if out.shape.rank == 2 and out.shape[-1] == 1:
            other = 1.0 - out if self.probability else -out
            out = tf.concat([other, out], axis=-1)  # (class 0, class 1)
        if out.shape.rank != 2:
            raise ValueError(
                f"Model '{self.model_name}' returns outputs of shape {tuple(out.shape)}, not "
                "(batch, classes); explain a callable score instead, e.g. "
                "target=lambda out: tf.reduce_sum(out[..., 1], axis=[1, 2])."
            )
        n_classes = tf.shape(out)[-1]
        check = check_in_graph(
            tf.reduce_all(classes < n_classes),
            f"A class index is out of range for model '{self.model_name}' "
            f"({out.shape[-1]} classes); use indices 0..{(out.shape[-1] or 0) - 1}.",
        )
        with tf.control_dependencies([check]):
            predicted = tf.argmax(out, axis=-1, output_type=tf.int32)
            classes = tf.where(classes < 0, predicted, classes)
        return tf.gather(out, classes, batch_dims=1), classes


class CallableScore:
    """Score function: a user callable on the model outputs, summed per example."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __eq__(self, other):
        return isinstance(other, CallableScore) and other.fn is self.fn

    def __hash__(self):
        return hash(("callable", id(self.fn)))

    def __call__(self, outputs, hidden):
        score = tf.convert_to_tensor(self.fn(outputs))
        if score.shape.rank == 0:
            raise ValueError(
                "A callable target must return one score per example (shape (N, ...)); "
                "it returned a scalar. Do not reduce over the batch axis."
            )
        if score.shape.rank > 1:
            score = tf.reduce_sum(score, axis=list(range(1, score.shape.rank)))
        return score


class UnitScore:
    """Score function: a hidden unit, a channel's spatial mean (y < 0) or one position."""

    def __init__(self, path: str):
        self.path = path

    def __eq__(self, other):
        return isinstance(other, UnitScore) and other.path == self.path

    def __hash__(self):
        return hash(("unit", self.path))

    def __call__(self, outputs, hidden, unit):
        h = tf.cast(hidden[self.path], tf.float32)
        channel = unit[:, 0]
        check = check_in_graph(
            tf.reduce_all(channel < tf.shape(h)[-1]),
            f"The target channel is out of range for layer '{self.path}' "
            f"({h.shape[-1]} channels).",
        )
        with tf.control_dependencies([check]):
            values = tf.gather(h, channel, axis=-1, batch_dims=1)
        if h.shape.rank == 2:
            return values
        if h.shape.rank != 4:
            raise ValueError(
                f"Layer '{self.path}' has outputs of shape {tuple(h.shape)}; a unit target "
                "needs a (batch, channels) or (batch, height, width, channels) layer."
            )
        mean = tf.reduce_mean(values, axis=[1, 2])
        yx = tf.maximum(unit[:, 1:], 0)
        size = tf.shape(values)[1:3]
        check = check_in_graph(
            tf.reduce_all(yx < size[None, :]),
            f"The target position (y, x) is outside the output of layer '{self.path}' "
            f"({h.shape[1]}x{h.shape[2]}).",
        )
        with tf.control_dependencies([check]):
            point = tf.gather_nd(values, yx, batch_dims=1)
        return tf.where(unit[:, 1] < 0, mean, point)


_CALLABLE_SCORES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass
class Target:
    """A resolved target: the score function and its per-example arguments.

    Attributes:
        kind: `"class"`, `"callable"` or `"unit"`.
        score_fn: the score function for `keras_cnnvis.model.gradient_function`.
        args: per-example numpy arguments of the score function.
        arg_specs: their `(shape, dtype)` without the batch axis.
        capture: layer paths the score needs captured.
        layer: the unit's layer path (unit targets), else None.
    """

    kind: str
    score_fn: Any
    args: tuple
    arg_specs: tuple
    capture: tuple = ()
    layer: str | None = None

    def with_classes(self, classes: np.ndarray) -> "Target":
        """The same class target with fixed class indices (e.g. resolved predictions)."""
        classes = np.asarray(classes, np.int32)
        return Target(self.kind, self.score_fn, (classes,), self.arg_specs)

    def take(self, index: np.ndarray) -> "Target":
        """The target of examples `index` (e.g. a slice, or repeats for copies)."""
        args = tuple(np.asarray(a)[index] for a in self.args)
        return Target(self.kind, self.score_fn, args, self.arg_specs, self.capture, self.layer)


def _n_classes(model: keras.Model) -> int | None:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2:
        return None
    n = outputs[0].shape[-1]
    return 2 if n == 1 else n  # one binary unit: classes 0 and 1


def _check_single_output(model: keras.Model) -> None:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return
    if outputs and len(outputs) > 1:
        _single_output(list(outputs), model.name)


def resolve_target(model: keras.Model, target: Any, n: int) -> Target:
    """Turns a user's target into a score function and per-example arguments.

    Example:

    ```python
    resolve_target(model, None, 8)            # the predicted class of each image
    resolve_target(model, y_true, 8)          # the true labels (ints or one-hot)
    resolve_target(model, ("conv3", 5), 8)    # mean activation of conv3 channel 5
    ```

    Args:
        model: the explained model.
        target: None or `"predicted"` (the predicted class); an int (one class for all);
            `N` class indices or `(N, classes)` one-hot labels; a callable
            `fn(outputs) -> (N, ...)` scores, summed per example (regression, binary,
            segmentation, multi-output models); or a hidden unit `(layer, channel)` (the
            channel's spatial mean) or `(layer, channel, y, x)` (one position).
        n: the number of examples.

    Returns:
        A `Target`.

    Raises:
        ValueError: for a class index out of range, a label array of the wrong length, an
            unknown layer or channel, or a class target on a model with several outputs.
    """
    if callable(target) and not isinstance(target, (str, tuple)):
        try:
            score = _CALLABLE_SCORES.get(target)
            if score is None:
                score = _CALLABLE_SCORES[target] = CallableScore(target)
        except TypeError:  # not weak-referenceable
            score = CallableScore(target)
        return Target("callable", score, (), ())
    if isinstance(target, tuple) and target and isinstance(target[0], (str, keras.layers.Layer)):
        return _unit_target(model, target, n)
    _check_single_output(model)
    if target is None or (isinstance(target, str) and target == "predicted"):
        classes = np.full(n, PREDICTED, np.int32)
    elif isinstance(target, str):
        raise ValueError(
            f"Unknown target {target!r}: use None or 'predicted', class indices, labels, a "
            "callable on the outputs, or a hidden unit (layer, channel[, y, x])."
        )
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        classes = np.full(n, int(target), np.int32)
    else:
        classes = _class_array(target, n)
    inputs.check_class_range(classes, _n_classes(model), model.name)
    if (classes < PREDICTED).any():
        raise ValueError(f"Class indices must be >= 0; got {int(classes.min())}.")
    return Target("class", ClassScore(model.name), (classes,), (((), tf.int32),))


def _class_array(target: Any, n: int) -> np.ndarray:
    arr = np.asarray(target)
    if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] > 1:
        arr = np.argmax(arr, axis=-1)  # one-hot labels
    elif arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"A class target needs one index per image ({n}); got shape {arr.shape}.")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"Class indices must be integers; got dtype {arr.dtype}.")
    return arr.astype(np.int32)


def _unit_target(model: keras.Model, target: tuple, n: int) -> Target:
    if len(target) not in (2, 4):
        raise ValueError(
            f"A hidden-unit target is (layer, channel) or (layer, channel, y, x); got {target!r}."
        )
    info = find_layer(model, target[0])
    try:
        unit = [int(v) for v in target[1:]]
    except (TypeError, ValueError):
        raise ValueError(f"Channel and position of a unit target must be ints; got {target!r}.")
    if unit[0] < 0:
        raise ValueError(f"Channel must be >= 0; got {unit[0]}.")
    if len(unit) == 3 and (unit[1] < 0 or unit[2] < 0):
        raise ValueError(f"Unit position (y, x) must be >= 0; got {tuple(unit[1:])}.")
    shape = output_shape(info.layer)
    if shape is not None:
        if shape[-1] is not None and unit[0] >= shape[-1]:
            raise ValueError(
                f"Channel {unit[0]} is out of range for layer '{info.path}' with "
                f"{shape[-1]} channels."
            )
        if len(unit) == 3 and len(shape) == 4:
            if (shape[1] is not None and unit[1] >= shape[1]) or (
                shape[2] is not None and unit[2] >= shape[2]
            ):
                raise ValueError(
                    f"Position {tuple(unit[1:])} is outside the {shape[1]}x{shape[2]} "
                    f"output of layer '{info.path}'."
                )
        if len(unit) == 3 and len(shape) != 4:
            raise ValueError(
                f"Layer '{info.path}' has no spatial output (shape {shape}); use "
                "(layer, channel)."
            )
    spec = [unit[0], -1, -1] if len(unit) == 1 else unit
    args = np.tile(np.asarray(spec, np.int32), (n, 1))
    return Target(
        "unit", UnitScore(info.path), (args,), (((3,), tf.int32),), (info.path,), info.path
    )
