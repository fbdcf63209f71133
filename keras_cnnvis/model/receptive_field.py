"""Receptive fields: which input pixels a unit of a convolutional layer can see, computed
analytically layer by layer (size, jump and start per axis) along the model's real graph.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.calls import recorded, wrap_calls
from keras_cnnvis.model.geometry import (  # noqa: F401 (SUPPORTED: public here since 0.1)
    SUPPORTED,
    Geom,
    Unknown,
    _describe,
    rule,
)
from keras_cnnvis.model.layers import (
    LayerInfo,
    check_image_model,
    find_layer,
    is_layer,
    iter_layers,
)


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of every unit of one layer, per axis `(rows, cols)`.

    The theoretical field of unit `(i, j)` covers the input rows
    `start[0] + i * jump[0] ... start[0] + i * jump[0] + size[0] - 1` (and likewise
    columns), as if every padding were real data; `start` may be negative. `box` gives the
    pixels the unit really depends on: the theoretical window clipped to the image, and
    shrunk further where a convolution's taps fall into the padding of an intermediate
    layer (e.g. a `"same"` convolution after a `"valid"` one).

    After upsampling (`UpSampling2D`, `Conv2DTranspose`, `Resizing` to a larger size)
    neighbouring units are less than a pixel apart: `jump` is then a float, and `size`
    and `start` are the whole-pixel window that holds every unit's field.

    Attributes:
        layer: the layer's path in the model.
        size: theoretical field size in input pixels `(height, width)`.
        jump: input pixels between neighbouring units (the product of strides).
        start: input coordinate of the top-left pixel of unit `(0, 0)`'s theoretical field.
        input_size: the input image size `(height, width)` the field was computed for.
        output_shape: the layer's output `(height, width, channels)` at that input size.
        measured: paths of the layers on the way whose geometry was measured from input
            gradients (no analytic rule), if any.
    """

    layer: str
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    input_size: tuple[int, int]
    output_shape: tuple[int, int, int]
    extent: tuple = field(default=(), compare=False, repr=False)
    """Per axis `(first, last)` integer arrays over the layer's output positions: the first
    and last input pixel each position depends on (`first > last` when it sees only padding)."""
    tops: tuple = field(default=(), compare=False, repr=False)
    """Per axis, the first pixel of each unit's window (an integer array)."""
    measured: tuple = field(default=(), compare=False)

    @property
    def center(self) -> tuple[float, float]:
        """Input coordinates of the centre of unit `(0, 0)`'s theoretical field."""
        return tuple(s + (n - 1) / 2 for s, n in zip(self.start, self.size))

    def window(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The theoretical field of unit `(row, col)`: `(top, left, bottom, right)` with
        exclusive ends, possibly reaching outside the image."""
        if self.tops:
            top, left = int(self.tops[0][row]), int(self.tops[1][col])
        else:
            top = self.start[0] + int(row) * self.jump[0]
            left = self.start[1] + int(col) * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The image pixels unit `(row, col)` depends on: `(top, left, bottom, right)`,
        exclusive ends, always inside `window(row, col)` and the image. Empty
        (`bottom <= top`) for a unit that sees only padding."""
        (r0, r1), (c0, c1) = self.extent
        top, bottom = int(r0[row]), int(r1[row]) + 1
        left, right = int(c0[col]), int(c1[col]) + 1
        if bottom <= top or right <= left:
            return 0, 0, 0, 0
        return top, left, bottom, right

    def as_dict(self) -> dict:
        """`{"size", "jump", "start"}` as `[rows, cols]` lists (the log-format payload)."""
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


def _input_tensors(layer, args, kwargs) -> list:
    """The tensors a call reads: a layer's first argument (a tensor or a list of them), or
    every tensor argument of an operation (`x + y`)."""
    if is_layer(layer):
        value = args[0] if args else next(iter(kwargs.values()), None)
    else:
        value = (args, kwargs)
    return [t for t in tf.nest.flatten(value) if tf.is_tensor(t)]


_CHUNK = 16  # output rows (or columns) measured per batched gradient


def _dependency(call, args, kwargs, x, out_shape, axis: int) -> tuple:
    """Per output position along `axis`, the first and last input position it depends on:
    the support of input gradients of the call (an output row or column at a time, batched,
    two positive random inputs)."""
    n_in, n_out = int(x.shape[1 + axis]), int(out_shape[1 + axis])
    lo = np.full(n_out, np.iinfo(np.int64).max // 4, np.int64)
    hi = np.full(n_out, -1, np.int64)
    rng = np.random.default_rng(0)
    for _ in range(2):
        base = rng.uniform(0.5, 1.5, size=(1,) + tuple(int(v) for v in x.shape[1:]))
        for begin in range(0, n_out, _CHUNK):
            rows = np.arange(begin, min(n_out, begin + _CHUNK))
            batch = tf.constant(np.repeat(base, len(rows), 0), x.dtype)
            pick = np.zeros((len(rows), n_out), np.float32)
            pick[np.arange(len(rows)), rows] = 1.0
            shape = [len(rows)] + [1] * (len(out_shape) - 1)  # (a channel picked: rank 3)
            shape[1 + axis] = n_out
            mask = tf.constant(pick.reshape(shape))
            with tf.GradientTape() as tape:
                tape.watch(batch)
                out = call(batch, *args[1:], **kwargs)
                score = tf.reduce_sum(tf.cast(out, tf.float32) * mask)
            grad = tape.gradient(score, batch)
            if grad is None:
                raise ValueError("the output does not depend on the input")
            other = tuple(a for a in (1, 2, 3) if a != 1 + axis)
            seen = np.asarray(tf.reduce_any(tf.abs(grad) > 0, axis=other))  # (rows, n_in)
            has = seen.any(axis=1)
            first = np.where(has, seen.argmax(axis=1), lo[rows])
            last = np.where(has, n_in - 1 - seen[:, ::-1].argmax(axis=1), hi[rows])
            lo[rows] = np.where(has, np.minimum(lo[rows], first), lo[rows])
            hi[rows] = np.where(has, np.maximum(hi[rows], last), hi[rows])
    return lo, hi


class _Tracer:
    """Follows one eager forward pass and assigns a geometry to every tensor produced."""

    def __init__(self):
        self.known: dict[int, tuple] = {}  # id(tensor) -> (tensor, geometry)
        self.calls: dict[str, list] = {}

    def set(self, tensor, geom) -> None:
        self.known[id(tensor)] = (tensor, geom)

    def get(self, tensor) -> Any:
        return recorded(tensor, self.known, rtol=1e-2, atol=1e-3)

    def wrap(self, info: LayerInfo, original, container: bool):
        def wrapped(*args, **kwargs):
            ins = _input_tensors(info.layer, args, kwargs)
            out = original(*args, **kwargs)
            outs = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
            if container:
                geom = self.get(outs[0]) if len(outs) == 1 else None
                if geom is None:
                    geom = Unknown(
                        f"the output of model {_describe(info.path, info.layer)} could not be followed"
                    )
            else:
                geoms = [self.get(t) for t in ins]
                if len(outs) != 1 or not ins:
                    geom = Unknown(f"layer {_describe(info.path, info.layer)} has several outputs")
                else:
                    out_shape = tuple(outs[0].shape)

                    def measure(axis):
                        if len(ins) != 1 or not args or args[0] is not ins[0]:
                            raise ValueError("it does not take exactly one image tensor")
                        return _dependency(original, args, kwargs, ins[0], out_shape, axis)

                    shapes = [tuple(t.shape) for t in ins]
                    geom = rule(info.path, info.layer, geoms, shapes, out_shape, measure)
            for t in outs:
                self.set(t, geom)
            self.calls.setdefault(info.path, []).append(
                (geom, tuple(outs[0].shape) if outs else None)
            )
            return out

        return wrapped


_CALLS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _layer_calls(model: keras.Model, shape: tuple) -> dict[str, list]:
    """Geometry and output shape of every layer call in one traced forward pass.

    Geometry depends on the architecture and input size only, so the trace is kept per
    model and input shape (a monitor asking about four layers pays for one pass).
    """
    per_model = _CALLS.setdefault(model, {})
    key = (shape, len(list(iter_layers(model, ops=True))))
    if key not in per_model:
        per_model[key] = _trace_calls(model, shape)
    return per_model[key]


def _trace_calls(model: keras.Model, shape: tuple) -> dict[str, list]:
    tracer = _Tracer()
    infos = {id(info.layer): info for info in iter_layers(model, ops=True)}

    def make(layer, original):
        info = infos[id(layer)]
        return tracer.wrap(info, original, isinstance(layer, keras.Model))

    with wrap_calls([info.layer for info in infos.values()], make):
        x = tf.constant(np.random.default_rng(0).normal(size=(1,) + tuple(shape)), tf.float32)
        axes = tuple(np.arange(int(n), dtype=np.int64) for n in shape[:2])
        tracer.set(x, Geom((1, 1), (1, 1), (0, 0), axes, axes))
        model(x, training=False)
    return tracer.calls


def receptive_field(
    model: keras.Model, layer: Any, input_shape: Sequence[int] | None = None
) -> ReceptiveField:
    """Computes the receptive field of the units of a layer, analytically.

    Follows one forward pass of a single random image through the real model graph
    (branches, nested models and subclassed models included) and composes, per axis,
    the field size `r`, jump `j` and start `s` of every layer: a convolution or pooling
    with kernel `k`, stride `t`, dilation `d` and `p` pixels of padding before the data
    gives `r' = r + (d (k - 1)) j`, `j' = j t`, `s' = s - p j`. With `"same"` padding `p`
    is TensorFlow's (the smaller half, so it depends on the input size). Merges take the
    union of their inputs' fields; per-position layers change nothing. A merge with a
    1x1 input broadcast over a larger map (a squeeze-and-excitation gate computed from a
    global pooling) is treated as a per-channel scale: strictly such units see the whole
    image, but their local field is the one that explains their patches.

    Example:

    ```python
    rf = receptive_field(model, "conv4")
    print(rf.size, rf.jump, rf.start)  # e.g. (40, 40) (8, 8) (-16, -16)
    top, left, bottom, right = rf.box(3, 5)  # pixels seen by unit (3, 5)
    ```

    Args:
        model: a single-input channels-last image model of any kind.
        layer: the layer (path, name, index or object; see `find_layer`).
        input_shape: the image shape `(height, width, channels)`, needed when the model
            does not fix its spatial size. Defaults to None (the model's input shape).

    Returns:
        A `ReceptiveField`.

    Raises:
        ValueError: for an unknown layer, an input size that is not known, a layer
            without spatial output (after global pooling or flatten), or a layer on the
            way whose geometry is not known (the message names it).
    """
    info = find_layer(model, layer)
    shape = check_image_model(model, input_shape)
    if any(v is None for v in shape):
        raise ValueError(
            f"The input size of model '{model.name}' is not fixed ({shape}); pass "
            "input_shape=(height, width, channels)."
        )
    calls = _layer_calls(model, tuple(shape)).get(info.path)
    if not calls:
        raise ValueError(f"Layer '{info.path}' was not called in a forward pass of '{model.name}'.")
    geom, out_shape = calls[0]
    if isinstance(geom, Unknown):
        raise ValueError(
            f"Cannot compute the receptive field of layer '{info.path}': {geom.reason}."
        )
    if any(not (isinstance(g, Geom) and g.same(geom)) for g, _ in calls[1:]):
        raise ValueError(
            f"Layer '{info.path}' is called {len(calls)} times with different receptive "
            "fields; choose a layer that is used once."
        )
    size, start, tops = _windows(geom)
    return ReceptiveField(
        layer=info.path,
        size=size,
        jump=geom.jump,
        start=start,
        input_size=(int(shape[0]), int(shape[1])),
        output_shape=tuple(int(v) for v in out_shape[1:]),
        extent=tuple(zip(geom.first, geom.last)),
        tops=tops,
        measured=geom.measured,
    )


def _windows(geom: Geom) -> tuple:
    """Whole-pixel windows of equal size per axis holding every unit's theoretical field
    and the pixels it depends on: `(size, start, tops)`, `tops` empty when the geometry is
    integral (then window `i` starts at `start + i * jump`)."""
    whole = all(isinstance(v, int) for v in geom.size + geom.jump + geom.start)
    if whole and not geom.measured:
        return geom.size, geom.start, ()
    size, start, tops = [], [], []
    for a in range(2):
        n = len(geom.first[a])
        lo = geom.start[a] + np.arange(n) * geom.jump[a]
        hi = lo + geom.size[a]
        seen = geom.first[a] <= geom.last[a]
        top = np.floor(np.where(seen, np.minimum(lo, geom.first[a]), lo)).astype(np.int64)
        end = np.ceil(np.where(seen, np.maximum(hi, geom.last[a] + 1), hi)).astype(np.int64)
        size.append(int((end - top).max()) if n else int(np.ceil(geom.size[a])))
        start.append(int(top[0]) if n else int(np.floor(geom.start[a])))
        tops.append(top)
    return tuple(size), tuple(start), tuple(tops)
