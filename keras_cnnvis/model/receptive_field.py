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

from keras_cnnvis.model.calls import wrap_calls
from keras_cnnvis.model.layers import LayerInfo, check_image_model, find_layer, iter_layers

L = keras.layers

# Layers that act on each spatial position independently (geometry unchanged).
_POINTWISE = tuple(
    getattr(L, name)
    for name in (
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "BatchNormalization",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Rescaling",
        "Identity",
        "Dense",
        "EinsumDense",
    )
    if hasattr(L, name)
)
# Pointwise only when they normalise over the channel axis alone.
_CHANNEL_AXIS = tuple(
    getattr(L, name)
    for name in ("Softmax", "LayerNormalization", "UnitNormalization", "Normalization")
    if hasattr(L, name)
)
_MERGE = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate)
_CONV = (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)  # Conv2D covers groups
_POOL = (L.MaxPooling2D, L.AveragePooling2D)
_FLAT = (
    L.Flatten,
    L.GlobalAveragePooling2D,
    L.GlobalMaxPooling2D,
)

SUPPORTED = (
    "Conv2D, DepthwiseConv2D, SeparableConv2D (any kernel, stride, dilation, 'same' or "
    "'valid'), MaxPooling2D, AveragePooling2D, ZeroPadding2D, Cropping2D, merge layers "
    "(Add, Concatenate on channels, ...) and per-position layers (activations, "
    "BatchNormalization, Dropout, Rescaling, Dense on feature maps, ...)"
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

    Attributes:
        layer: the layer's path in the model.
        size: theoretical field size in input pixels `(height, width)`.
        jump: input pixels between neighbouring units (the product of strides).
        start: input coordinate of the top-left pixel of unit `(0, 0)`'s theoretical field.
        input_size: the input image size `(height, width)` the field was computed for.
        output_shape: the layer's output `(height, width, channels)` at that input size.
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

    @property
    def center(self) -> tuple[float, float]:
        """Input coordinates of the centre of unit `(0, 0)`'s theoretical field."""
        return tuple(s + (n - 1) / 2 for s, n in zip(self.start, self.size))

    def window(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The theoretical field of unit `(row, col)`: `(top, left, bottom, right)` with
        exclusive ends, possibly reaching outside the image."""
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


_NONE = np.iinfo(np.int64).max // 4  # "first pixel" of a position that sees only padding


@dataclass(frozen=True, eq=False)
class _Geom:
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    first: tuple  # per axis: first input pixel each position depends on
    last: tuple  # per axis: last input pixel (-1 for padding-only positions)

    def same(self, other) -> bool:
        return (
            isinstance(other, _Geom)
            and (self.size, self.jump, self.start) == (other.size, other.jump, other.start)
            and all(
                np.array_equal(a, b)
                for a, b in zip(self.first + self.last, other.first + other.last)
            )
        )


@dataclass(frozen=True)
class _Unknown:
    reason: str


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    return int(v[0]), int(v[1])


def _taps(first, last, n_out, stride, offset, taps):
    """Extent of each output position that reads input positions `o*stride - offset + t`
    for `t` in `taps`, skipping positions outside the input (padding)."""
    n_in = len(first)
    o = np.arange(n_out)
    lo = np.full(n_out, _NONE, np.int64)
    hi = np.full(n_out, -1, np.int64)
    for t in taps:
        idx = o * stride - offset + t
        ok = (idx >= 0) & (idx < n_in)
        safe = np.clip(idx, 0, n_in - 1)
        lo = np.where(ok, np.minimum(lo, first[safe]), lo)
        hi = np.where(ok, np.maximum(hi, last[safe]), hi)
    return lo, hi


def _sliding(g: _Geom, kernel, stride, dilation, padding, n_in, n_out) -> _Geom:
    size, jump, start, first, last = [], [], [], [], []
    for a in range(2):
        k_eff = dilation[a] * (kernel[a] - 1) + 1
        if padding == "same":
            # TensorFlow puts the smaller half of the padding before (top/left).
            total = max((n_out[a] - 1) * stride[a] + k_eff - n_in[a], 0)
            before = total // 2
        else:
            before = 0
        size.append(g.size[a] + (k_eff - 1) * g.jump[a])
        start.append(g.start[a] - before * g.jump[a])
        jump.append(g.jump[a] * stride[a])
        taps = range(0, k_eff, dilation[a])
        lo, hi = _taps(g.first[a], g.last[a], n_out[a], stride[a], before, taps)
        first.append(lo)
        last.append(hi)
    return _Geom(tuple(size), tuple(jump), tuple(start), tuple(first), tuple(last))


def _shift(g: _Geom, offsets, n_out) -> _Geom:
    """Output position `o` is input position `o + offset` (cropping > 0, padding < 0)."""
    first, last = [], []
    for a in range(2):
        lo, hi = _taps(g.first[a], g.last[a], n_out[a], 1, -offsets[a], [0])
        first.append(lo)
        last.append(hi)
    start = tuple(g.start[a] + offsets[a] * g.jump[a] for a in range(2))
    return _Geom(g.size, g.jump, start, tuple(first), tuple(last))


def _describe(info_path: str, layer) -> str:
    return f"'{info_path}' ({type(layer).__name__})"


def _rule(path: str, layer, geoms: list, in_shapes: list, out_shape) -> Any:
    """The output geometry of one leaf layer call, or `_Unknown(reason)`."""
    if isinstance(layer, _MERGE) and len(out_shape) == 4:
        # Squeeze-and-excitation style gates: a 1x1 input broadcast over a larger map scales
        # channels; it is left out of the geometry (see `receptive_field`).
        keep = [
            i
            for i, s in enumerate(in_shapes)
            if not (tuple(s[1:3]) == (1, 1) and tuple(out_shape[1:3]) != (1, 1))
        ]
        if keep and len(keep) < len(geoms):
            geoms = [geoms[i] for i in keep]
            in_shapes = [in_shapes[i] for i in keep]
    for g in geoms:
        if not isinstance(g, _Geom):
            return g
    if len(out_shape) != 4:
        return _Unknown(
            f"layer {_describe(path, layer)} has no spatial output (output shape "
            f"{tuple(out_shape)}); choose a layer before it"
        )
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return _Unknown(
            f"layer {_describe(path, layer)} is channels_first; only channels_last is supported"
        )
    name = _describe(path, layer)
    if isinstance(layer, _MERGE):
        if isinstance(layer, L.Concatenate) and layer.axis not in (-1, 3):
            return _Unknown(f"layer {name} concatenates along axis {layer.axis}, not channels")
        jumps = {g.jump for g in geoms}
        sizes = {tuple(s[1:3]) for s in in_shapes}
        if len(jumps) != 1 or len(sizes) != 1:
            return _Unknown(f"layer {name} merges feature maps of different geometry")
        lo = tuple(min(g.start[a] for g in geoms) for a in range(2))
        hi = tuple(max(g.start[a] + g.size[a] for g in geoms) for a in range(2))
        first = tuple(np.minimum.reduce([g.first[a] for g in geoms]) for a in range(2))
        last = tuple(np.maximum.reduce([g.last[a] for g in geoms]) for a in range(2))
        return _Geom(tuple(h - l for h, l in zip(hi, lo)), geoms[0].jump, lo, first, last)
    if len(geoms) != 1:
        return _Unknown(f"layer {name} takes {len(geoms)} inputs and has no known rule")
    g = geoms[0]
    n_in = tuple(int(v) for v in in_shapes[0][1:3])
    n_out = tuple(int(v) for v in out_shape[1:3])
    if isinstance(layer, _CONV):
        return _sliding(
            g,
            _pair(layer.kernel_size),
            _pair(layer.strides),
            _pair(layer.dilation_rate),
            layer.padding,
            n_in,
            n_out,
        )
    if isinstance(layer, _POOL):
        return _sliding(
            g, _pair(layer.pool_size), _pair(layer.strides), (1, 1), layer.padding, n_in, n_out
        )
    if isinstance(layer, L.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return _shift(g, (-top, -left), n_out)
    if isinstance(layer, L.Cropping2D):
        (top, _), (left, _) = layer.cropping
        return _shift(g, (top, left), n_out)
    if isinstance(layer, _CHANNEL_AXIS):
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if [a % 4 for a in axis] == [3] and n_in == n_out:
            return g
        return _Unknown(f"layer {name} normalises over axis {layer.axis}, not only channels")
    if isinstance(layer, _POINTWISE) and n_in == n_out:
        return g
    if isinstance(layer, _FLAT):
        return _Unknown(f"layer {name} has no spatial output; choose a layer before it")
    return _Unknown(f"layer {name} has no known receptive-field rule (supported: {SUPPORTED})")


def _first_tensors(args, kwargs) -> list:
    value = args[0] if args else next(iter(kwargs.values()), None)
    return [t for t in tf.nest.flatten(value) if tf.is_tensor(t)]


class _Tracer:
    """Follows one eager forward pass and assigns a geometry to every tensor produced."""

    def __init__(self):
        self.known: dict[int, tuple] = {}  # id(tensor) -> (tensor, geometry)
        self.calls: dict[str, list] = {}

    def set(self, tensor, geom) -> None:
        self.known[id(tensor)] = (tensor, geom)

    def get(self, tensor) -> Any:
        entry = self.known.get(id(tensor))
        if entry is not None:
            return entry[1]
        # A cast (mixed precision) or conversion made a new tensor: match it by value.
        value = np.asarray(tf.cast(tensor, tf.float32))
        for other, geom in reversed(list(self.known.values())):
            if tuple(other.shape) == value.shape and np.allclose(
                np.asarray(tf.cast(other, tf.float32)), value, rtol=1e-2, atol=1e-3
            ):
                return geom
        return None

    def wrap(self, info: LayerInfo, original, container: bool):
        def wrapped(*args, **kwargs):
            ins = _first_tensors(args, kwargs)
            out = original(*args, **kwargs)
            outs = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
            if container:
                geom = self.get(outs[0]) if len(outs) == 1 else None
                if geom is None:
                    geom = _Unknown(
                        f"the output of model {_describe(info.path, info.layer)} could not be followed"
                    )
            else:
                geoms = []
                for t in ins:
                    g = self.get(t)
                    geoms.append(
                        g
                        if g is not None
                        else _Unknown(
                            f"the input of layer {_describe(info.path, info.layer)} does not "
                            "come from a Keras layer with known geometry (an operation that "
                            "is not a layer, e.g. a tf/ops call in a subclassed model)"
                        )
                    )
                if len(outs) != 1 or not ins:
                    geom = _Unknown(f"layer {_describe(info.path, info.layer)} has several outputs")
                else:
                    geom = _rule(
                        info.path,
                        info.layer,
                        geoms,
                        [tuple(t.shape) for t in ins],
                        tuple(outs[0].shape),
                    )
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
    key = (shape, len(list(iter_layers(model))))
    if key not in per_model:
        per_model[key] = _trace_calls(model, shape)
    return per_model[key]


def _trace_calls(model: keras.Model, shape: tuple) -> dict[str, list]:
    tracer = _Tracer()
    infos = {id(info.layer): info for info in iter_layers(model)}

    def make(layer, original):
        info = infos[id(layer)]
        return tracer.wrap(info, original, isinstance(layer, keras.Model))

    with wrap_calls([info.layer for info in infos.values()], make):
        x = tf.constant(np.random.default_rng(0).normal(size=(1,) + tuple(shape)), tf.float32)
        axes = tuple(np.arange(int(n), dtype=np.int64) for n in shape[:2])
        tracer.set(x, _Geom((1, 1), (1, 1), (0, 0), axes, axes))
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
    if isinstance(geom, _Unknown):
        raise ValueError(
            f"Cannot compute the receptive field of layer '{info.path}': {geom.reason}."
        )
    if any(not (isinstance(g, _Geom) and g.same(geom)) for g, _ in calls[1:]):
        raise ValueError(
            f"Layer '{info.path}' is called {len(calls)} times with different receptive "
            "fields; choose a layer that is used once."
        )
    return ReceptiveField(
        layer=info.path,
        size=geom.size,
        jump=geom.jump,
        start=geom.start,
        input_size=(int(shape[0]), int(shape[1])),
        output_shape=tuple(int(v) for v in out_shape[1:]),
        extent=tuple(zip(geom.first, geom.last)),
    )
