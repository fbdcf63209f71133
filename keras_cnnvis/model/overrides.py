"""Temporary changes to how a model computes, for attribution and synthesis: ReLU gradient
overrides (guided backprop, deconvnet) and a linear output activation (logits); always undone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import keras
import tensorflow as tf

from keras_cnnvis.model.calls import patched
from keras_cnnvis.model.layers import iter_layers

RELU_OVERRIDES = ("guided", "deconvnet")
SQUASHERS = ("softmax", "sigmoid")


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


@dataclass(frozen=True)
class OutputActivation:
    """The activation a model applies last, and how to switch it off.

    Attributes:
        name: the activation's name (`"softmax"`, `"sigmoid"`, `"linear"`, `"relu"`, ...),
            or None when the model's last computation is not a layer with a known
            activation (e.g. a subclassed model's own `call`).
        layer: the layer that applies it (None when `name` is None).
        attribute: `"activation"` (an activation argument) or `"call"` (a `Softmax` or
            `Activation` layer replaced whole).
        fn: the activation as a function of the pre-activation tensor.
    """

    name: str | None
    layer: Any = None
    attribute: str = "activation"
    fn: Callable | None = None

    @property
    def squashes(self) -> bool:
        """Whether it is a final softmax or sigmoid (what `logits=True` makes linear)."""
        return self.name in SQUASHERS

    def linear(self) -> Callable:
        """The replacement for `getattr(layer, attribute)` that makes it linear."""
        return _identity_call if self.attribute == "call" else keras.activations.linear


def _last_leaf(model: keras.Model) -> Any:
    layer = model
    while isinstance(layer, keras.Model):
        children = [c for c in layer.layers if not isinstance(c, keras.layers.InputLayer)]
        if not children:
            return None
        layer = children[-1]
    return layer


def output_activation(model: keras.Model) -> OutputActivation:
    """The activation of the model's last layer (descending into a nested last model).

    "Last" is the last layer in the model's layer order (for subclassed models, the order
    the layers were assigned). A model with several outputs has no single one (`name` None).

    Example:

    ```python
    output_activation(model).name   # "softmax", "sigmoid", "linear", ...
    ```

    Args:
        model: a Keras model of any kind.

    Returns:
        An `OutputActivation`.
    """
    try:
        if len(model.outputs) != 1:
            return OutputActivation(None)
    except (AttributeError, TypeError, ValueError):
        pass
    layer = _last_leaf(model)
    if layer is None:
        return OutputActivation(None)
    if isinstance(layer, keras.layers.Softmax):
        return OutputActivation("softmax", layer, "call", tf.nn.softmax)
    act = getattr(layer, "activation", None)
    name = _fn_name(act)
    if name is None:
        return OutputActivation(None)
    return OutputActivation(name, layer, "activation", act)


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
        out = output_activation(model)
        if out.squashes:
            patches = [p for p in patches if p[0] is not out.layer or p[1] != out.attribute]
            patches.append((out.layer, out.attribute, out.linear()))
    with contextlib.ExitStack() as stack:
        for layer, attr, value in patches:
            stack.enter_context(patched(layer, attr, value))
        yield
