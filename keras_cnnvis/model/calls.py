"""The one place that patches a model's layers: wrapping `layer.call` to record (or transform)
what layers compute, truncated forward passes, and temporary attribute patches; every patch is
undone in `finally`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.layers import find_layers


def restore_calls(saved: list) -> None:
    """Undoes `layer.call` wrappers: `saved` holds `(layer, had_own_call, original)` in
    wrapping order; instance attributes are restored, class methods uncovered."""
    for layer, had_own, original in reversed(saved):
        if had_own:
            layer.call = original
        else:
            del layer.call
    saved.clear()


@contextlib.contextmanager
def wrap_calls(layers: Any, make_wrapper: Callable[[Any, Callable], Callable]) -> Iterator[None]:
    """Replaces each layer's `call` by `make_wrapper(layer, original_call)` for the block.

    The one `layer.call` patcher of keras-cnnvis (output capture, truncated passes and the
    receptive-field trace all go through it). The wrappers are set on the layer instances,
    so they are seen inside nested and subclassed models, and always removed on exit, also
    when the block raises. A layer given twice is wrapped once.

    Example:

    ```python
    def shout(layer, call):
        def wrapped(*args, **kwargs):
            print(layer.name)
            return call(*args, **kwargs)
        return wrapped

    with wrap_calls([l for l in model.layers], shout):
        model(x)
    ```

    Args:
        layers: `keras.layers.Layer` objects.
        make_wrapper: `fn(layer, original_call) -> new_call`.
    """
    saved: list = []
    try:
        for layer in layers:
            if any(layer is s[0] for s in saved):
                continue
            had_own = "call" in vars(layer)
            original = layer.call
            saved.append((layer, had_own, original))
            layer.call = make_wrapper(layer, original)
        yield
    finally:
        restore_calls(saved)


def recorded(tensor: Any, known: dict, rtol: float, atol: float) -> Any:
    """What a trace recorded for `tensor` in `known` (`id(tensor) -> (tensor, payload)`),
    or None. A cast (mixed precision) or copy that made a new tensor between two recorded
    calls is matched by value: the payload of the latest recorded tensor close to it."""
    entry = known.get(id(tensor))
    if entry is not None:
        return entry[1]
    value = np.asarray(tf.cast(tensor, tf.float32))
    for other, payload in reversed(list(known.values())):
        if tuple(other.shape) == value.shape and np.allclose(
            np.asarray(tf.cast(other, tf.float32)), value, rtol=rtol, atol=atol
        ):
            return payload
    return None


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
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "capture_outputs":
        paths: dict[int, list[str]] = {}
        for info in self.infos:
            paths.setdefault(id(info.layer), []).append(info.path)

        def make(layer, original):
            def wrapped(*args, **kwargs):
                if self.capture == "input":
                    for path in paths[id(layer)]:
                        self.outputs[path] = _first_input(args, kwargs)
                out = original(*args, **kwargs)
                for path in paths[id(layer)]:
                    if self.transform is not None:
                        out = self.transform(path, out)
                    if self.capture == "output":
                        self.outputs[path] = out
                return out

            return wrapped

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(wrap_calls([i.layer for i in self.infos], make))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

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

    def record(path, value):
        recorded.setdefault(path, value)
        if wanted.issubset(recorded):
            raise _StopForward()

    def make(layer, original):
        paths = [i.path for i in infos if i.layer is layer]

        def wrapped(*args, **kwargs):
            if capture == "input":
                first = _first_input(args, kwargs)
                for p in paths:
                    record(p, first)
                return original(*args, **kwargs)
            out = original(*args, **kwargs)
            for p in paths:
                record(p, out)
            return out

        return wrapped

    with wrap_calls([info.layer for info in infos], make):
        try:
            model(inputs, training=False)
        except _StopForward:
            pass
    missing = [info.path for info in infos if info.path not in recorded]
    if missing:
        raise RuntimeError(f"Layers {missing} were not called during the forward pass.")
    return [recorded[info.path] for info in infos]
