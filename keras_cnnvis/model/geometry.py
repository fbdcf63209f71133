"""Receptive-field geometry, one layer at a time: how a layer maps the field size, jump and start
of its input to its output (analytic rules), and a measured rule from input gradients for layers
without one. `receptive_field.py` composes them along a model's real graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

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
# Element-wise operations of two tensors recorded in Functional graphs (`x + y`, ...).
_MERGE_OPS = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Divide", "TrueDivide")
# Image augmentation layers: inactive at inference (the identity), so a unit sees the same
# pixels with or without them. Preprocessing that changes the size (RandomCrop, Resizing,
# CenterCrop) is measured instead.
_AUGMENTATION = (
    "AutoContrast",
    "AugMix",
    "CutMix",
    "Equalization",
    "MixUp",
    "Pipeline",
    "RandAugment",
    "Solarization",
)


def _is_merge(layer: Any) -> bool:
    if isinstance(layer, _MERGE):
        return True
    return not isinstance(layer, L.Layer) and type(layer).__name__ in _MERGE_OPS


def _is_channel_stack(layer: Any, in_shapes: list, out_shape) -> bool:
    """`ops.stack` of single-channel maps along the channel axis (e.g. the RGB->BGR swap
    of `keras.applications.*.preprocess_input` in "caffe" mode)."""
    return (
        not isinstance(layer, L.Layer)
        and type(layer).__name__ == "Stack"
        and getattr(layer, "axis", None) in (-1, 3)
        and len(out_shape) == 4
        and all(len(s) == 3 for s in in_shapes)
    )


def _is_augmentation(layer: Any) -> bool:
    if not isinstance(layer, L.Layer):
        return False
    for cls in type(layer).__mro__:
        name = cls.__name__
        if cls.__module__.startswith("keras") and (
            name.startswith("Random") or name in _AUGMENTATION
        ):
            return True
    return False


def _not_from_image(path: str, layer: Any) -> str:
    return (
        f"the input of layer {_describe(path, layer)} does not come from a Keras layer with "
        "known geometry (an operation that is not a layer, e.g. a tf/ops call in a subclassed "
        "model)"
    )


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
    "(Add, Concatenate on channels, `x + y`, ...), per-position layers (activations, "
    "BatchNormalization, LayerNormalization, Dropout, Rescaling, Normalization, Dense on "
    "feature maps, ...) and augmentation layers (identity at inference); other layers "
    "(UpSampling2D, Conv2DTranspose, Resizing, CenterCrop, custom layers) are measured from "
    "input gradients"
)


NONE = np.iinfo(np.int64).max // 4  # "first pixel" of a position that sees only padding


@dataclass(frozen=True, eq=False)
class Geom:
    size: tuple  # theoretical size per axis (a float after upsampling)
    jump: tuple
    start: tuple
    first: tuple  # per axis: first input pixel each position depends on
    last: tuple  # per axis: last input pixel (-1 for padding-only positions)
    measured: tuple = ()  # paths of layers measured from gradients on the way

    def same(self, other) -> bool:
        return (
            isinstance(other, Geom)
            and (self.size, self.jump, self.start) == (other.size, other.jump, other.start)
            and all(
                np.array_equal(a, b)
                for a, b in zip(self.first + self.last, other.first + other.last)
            )
        )


@dataclass(frozen=True)
class Unknown:
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
    lo = np.full(n_out, NONE, np.int64)
    hi = np.full(n_out, -1, np.int64)
    for t in taps:
        idx = o * stride - offset + t
        ok = (idx >= 0) & (idx < n_in)
        safe = np.clip(idx, 0, n_in - 1)
        lo = np.where(ok, np.minimum(lo, first[safe]), lo)
        hi = np.where(ok, np.maximum(hi, last[safe]), hi)
    return lo, hi


def _sliding(g: Geom, kernel, stride, dilation, padding, n_in, n_out) -> Geom:
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
    return Geom(tuple(size), tuple(jump), tuple(start), tuple(first), tuple(last), g.measured)


def _shift(g: Geom, offsets, n_out) -> Geom:
    """Output position `o` is input position `o + offset` (cropping > 0, padding < 0)."""
    first, last = [], []
    for a in range(2):
        lo, hi = _taps(g.first[a], g.last[a], n_out[a], 1, -offsets[a], [0])
        first.append(lo)
        last.append(hi)
    start = tuple(g.start[a] + offsets[a] * g.jump[a] for a in range(2))
    return Geom(g.size, g.jump, start, tuple(first), tuple(last), g.measured)


def _describe(info_path: str, layer) -> str:
    return f"'{info_path}' ({type(layer).__name__})"


def rule(path: str, layer, geoms: list, in_shapes: list, out_shape, measure=None) -> Any:
    """The output geometry of one leaf layer (or operation) call, or `Unknown(reason)`.

    Args:
        path: the layer's path (for messages).
        layer: the layer or operation.
        geoms: the geometry of each input tensor (`Geom`, `Unknown` or None when the
            tensor is not from the image, e.g. a weight).
        in_shapes: the input tensors' shapes.
        out_shape: the output shape.
        measure: `fn(axis) -> (lo, hi)` measuring which input positions each output
            position depends on, for layers without an analytic rule. Defaults to None.
    """
    if _is_merge(layer) and len(out_shape) == 4:
        # Squeeze-and-excitation style gates: a 1x1 input broadcast over a larger map scales
        # channels; it is left out of the geometry (see `receptive_field`).
        keep = [
            i
            for i, s in enumerate(in_shapes)
            if len(s) == 4 and not (tuple(s[1:3]) == (1, 1) and tuple(out_shape[1:3]) != (1, 1))
        ]
        if keep and len(keep) < len(geoms):
            geoms = [geoms[i] for i in keep]
            in_shapes = [in_shapes[i] for i in keep]
    for g in geoms:
        if not isinstance(g, Geom):
            return g if g is not None else Unknown(_not_from_image(path, layer))
    if (
        len(out_shape) == 3
        and len(geoms) == 1
        and len(in_shapes[0]) == 4
        and tuple(out_shape[1:3]) == tuple(in_shapes[0][1:3])
        and measure is not None
    ):
        return _picked_channel(path, layer, geoms[0], in_shapes[0], out_shape, measure)
    channel_maps = (  # element-wise arithmetic on picked channels (x[..., i] * k, ...)
        _is_merge(layer)
        and len(out_shape) == 3
        and all(len(s) == 3 and tuple(s[1:3]) == tuple(out_shape[1:3]) for s in in_shapes)
    )
    if len(out_shape) != 4 and not channel_maps:
        return Unknown(
            f"layer {_describe(path, layer)} has no spatial output (output shape "
            f"{tuple(out_shape)}); choose a layer before it"
        )
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return Unknown(
            f"layer {_describe(path, layer)} is channels_first; only channels_last is supported"
        )
    name = _describe(path, layer)
    if _is_merge(layer) or _is_channel_stack(layer, in_shapes, out_shape):
        if isinstance(layer, L.Concatenate) and layer.axis not in (-1, 3):
            return Unknown(f"layer {name} concatenates along axis {layer.axis}, not channels")
        jumps = {g.jump for g in geoms}
        sizes = {tuple(s[1:3]) for s in in_shapes}
        if len(jumps) != 1 or len(sizes) != 1:
            return Unknown(f"layer {name} merges feature maps of different geometry")
        lo = tuple(min(g.start[a] for g in geoms) for a in range(2))
        hi = tuple(max(g.start[a] + g.size[a] for g in geoms) for a in range(2))
        first = tuple(np.minimum.reduce([g.first[a] for g in geoms]) for a in range(2))
        last = tuple(np.maximum.reduce([g.last[a] for g in geoms]) for a in range(2))
        measured = tuple(dict.fromkeys(p for g in geoms for p in g.measured))
        size = tuple(h - l for h, l in zip(hi, lo))
        return Geom(size, geoms[0].jump, lo, first, last, measured)
    if len(geoms) != 1:
        return Unknown(f"layer {name} takes {len(geoms)} inputs and has no known rule")
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
        return Unknown(f"layer {name} normalises over axis {layer.axis}, not only channels")
    if (isinstance(layer, _POINTWISE) or _is_augmentation(layer)) and n_in == n_out:
        return g
    if isinstance(layer, _FLAT):
        return Unknown(f"layer {name} has no spatial output; choose a layer before it")
    if measure is not None:
        try:
            deps = [measure(a) for a in range(2)]
        except Exception as error:  # not differentiable, several inputs, ...
            return Unknown(
                f"layer {name} has no known receptive-field rule and its geometry could not "
                f"be measured from input gradients ({type(error).__name__}: {error})"
            )
        return measured_geometry(g, path, deps, n_in, n_out)
    return Unknown(f"layer {name} has no known receptive-field rule (supported: {SUPPORTED})")


def _picked_channel(path: str, layer, g: Geom, in_shape, out_shape, measure) -> Any:
    """The geometry of a map of the same size with the channel axis dropped (`x[..., i]`):
    `g` when each position depends on the same position only (measured), else the
    measured geometry."""
    try:
        deps = [measure(a) for a in range(2)]
    except Exception as error:  # noqa: BLE001 - becomes the reason
        return Unknown(
            f"layer {_describe(path, layer)} has no spatial output (output shape "
            f"{tuple(out_shape)}) and could not be measured ({type(error).__name__}: {error})"
        )
    n = tuple(int(v) for v in in_shape[1:3])
    if all(
        np.array_equal(lo, np.arange(k)) and np.array_equal(hi, np.arange(k))
        for (lo, hi), k in zip(deps, n)
    ):
        return g
    return measured_geometry(g, path, deps, n, n)


def _whole(v: float) -> Any:
    """`v` as an int when it is one (so integral geometry stays integral)."""
    return int(round(v)) if abs(v - round(v)) < 1e-9 else float(v)


def measured_geometry(g: Geom, path: str, deps: list, n_in: tuple, n_out: tuple) -> Geom:
    """Composes `g` with a layer measured from gradients.

    Args:
        g: the geometry of the layer's input.
        path: the layer's path (recorded in `Geom.measured`).
        deps: per axis `(lo, hi)`: the first and last input position each output position
            depends on (`lo > hi` for none).
        n_in: the input's spatial size.
        n_out: the output's spatial size.
    """
    size, jump, start, first, last = [], [], [], [], []
    for a, (lo, hi) in enumerate(deps):
        lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
        valid = lo <= hi
        f = np.full(n_out[a], NONE, np.int64)
        l = np.full(n_out[a], -1, np.int64)
        for o in np.flatnonzero(valid):
            f[o] = g.first[a][lo[o] : hi[o] + 1].min()
            l[o] = g.last[a][lo[o] : hi[o] + 1].max()
        first.append(f)
        last.append(l)
        span = int((hi - lo)[valid].max()) + 1 if valid.any() else 1
        offset = int(lo[valid][0]) if valid.any() else 0
        size.append(_whole(g.size[a] + (span - 1) * g.jump[a]))
        jump.append(_whole(g.jump[a] * n_in[a] / max(1, n_out[a])))
        start.append(_whole(g.start[a] + offset * g.jump[a]))
    return Geom(
        tuple(size), tuple(jump), tuple(start), tuple(first), tuple(last), g.measured + (path,)
    )
