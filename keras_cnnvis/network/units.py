"""The arithmetic behind one unit of a traced network, as CNN Explainer shows it: the input
window of each input channel, the kernel slice, the products, their sum plus the bias and the
activation; the window of a pooling, the statistics of a BatchNorm, the terms of a merge.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis.network.trace import LayerRecord

MERGES = {
    "Add": "sum",
    "add": "sum",
    "Subtract": "difference",
    "subtract": "difference",
    "Multiply": "product",
    "multiply": "product",
    "Average": "mean",
    "Maximum": "max",
    "maximum": "max",
    "Minimum": "min",
    "minimum": "min",
}
POOLS = {"MaxPooling2D": "max", "AveragePooling2D": "mean"}
GLOBAL_POOLS = {"GlobalMaxPooling2D": "max", "GlobalAveragePooling2D": "mean"}
CONVS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
MAX_MAP = 1024  # a global pooling's map is given in full up to this many values


def window_rows(out_index: int, size: int, kernel: int, stride: int, dilation: int, padding: str):
    """Input indices read by output index `out_index` along one axis (may be out of range:
    padding), as Keras/TensorFlow pad: `"same"` puts the smaller half of the padding first."""
    pad = 0
    if padding == "same":
        out = math.ceil(size / stride)
        pad = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) // 2
    start = out_index * stride - pad
    return [start + i * dilation for i in range(kernel)]


def conv_window(
    x: np.ndarray, y0: int, x0: int, kernel: Sequence[int], strides, dilation, padding, fill=0.0
) -> np.ndarray:
    """The `(kh, kw, C)` input window of output position `(y0, x0)`; padding reads `fill`."""
    h, w = x.shape[:2]
    rows = window_rows(y0, h, kernel[0], strides[0], dilation[0], padding)
    cols = window_rows(x0, w, kernel[1], strides[1], dilation[1], padding)
    out = np.full((len(rows), len(cols), x.shape[-1]), fill, np.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if 0 <= r < h and 0 <= c < w:
                out[i, j] = x[r, c]
    return out


def activation_of(layer: Any, z: np.ndarray) -> np.ndarray:
    """Applies a layer's activation function to pre-activations `z` (numpy in, numpy out)."""
    fn = getattr(layer, "activation", None) or keras.activations.linear
    return np.asarray(fn(keras.ops.convert_to_tensor(np.asarray(z, np.float32))), np.float64)


def _top(sums: np.ndarray, top: int | None) -> tuple[np.ndarray, dict | None]:
    """Indices of the `top` largest |sums| (all when None), and the rest summed (None when
    nothing is left out)."""
    order = np.argsort(-np.abs(sums), kind="stable")
    if top is None or len(sums) <= top:
        return order, None
    rest = sums[order[top:]]
    return order[:top], {"count": int(len(rest)), "sum": math.fsum(rest.tolist())}


def _record_map(records: Sequence[LayerRecord]) -> dict:
    return {r.path: r for r in records}


def _input(record: LayerRecord, by_path: dict, k: int = 0) -> np.ndarray:
    if k == 0 and record.input_value is not None:
        return record.input_value
    return by_path[record.inputs[k]].output


def _weight(record: LayerRecord, name: str, weights: dict | None) -> np.ndarray | None:
    """A weight of the record's layer by name (`kernel`, `bias`, `gamma`, ...), from
    `weights` when given (a cache of the layer's arrays), else read from the layer."""
    if weights is not None:
        return weights.get(name)
    variable = getattr(record.layer, name, None)
    return None if variable is None else np.asarray(variable, np.float64)


def _conv(record, by_path, channel, pos, top, weights):
    cfg = record.config
    x = _input(record, by_path)
    cin = x.shape[-1]
    if record.type == "DepthwiseConv2D":
        dm = int(cfg.get("depth_multiplier", 1))
        i = channel // dm
        kernel = _weight(record, "kernel", weights)[:, :, i : i + 1, channel % dm]
        channels = np.array([i])
    elif record.type == "SeparableConv2D":
        dw = _weight(record, "depthwise_kernel", weights)
        pw = _weight(record, "pointwise_kernel", weights)
        dm = dw.shape[-1]
        # sum_i sum_j pw[i*dm+j, c] * (window_i . dw[:, :, i, j]) = sum_i window_i . k_i
        kernel = np.einsum("abij,ij->abi", dw, pw[0, 0, :, channel].reshape(cin, dm))
        channels = np.arange(cin)
    else:
        groups = int(cfg.get("groups", 1))
        per_group = cin // groups
        g = channel // (int(cfg["filters"]) // groups)
        kernel = _weight(record, "kernel", weights)[:, :, :, channel]
        channels = np.arange(g * per_group, (g + 1) * per_group)
    window = conv_window(
        x, pos[0], pos[1], kernel.shape[:2], cfg["strides"], cfg["dilation_rate"], cfg["padding"]
    )[:, :, channels]
    sums = np.einsum("abi,abi->i", window, kernel)
    keep, rest = _top(sums, top)
    terms = {
        "input": record.inputs[0],
        "channels": channels[keep].tolist(),
        "windows": np.moveaxis(window[:, :, keep], -1, 0),
        "kernels": np.moveaxis(kernel[:, :, keep], -1, 0),
        "sums": sums[keep],
    }
    return _weighted(record, sums, terms, rest, channel, "convolution", weights)


def _weighted(record, sums, terms, rest, channel, op, weights):
    bias = 0.0
    b = _weight(record, "bias", weights) if record.config.get("use_bias", True) else None
    if b is not None:
        bias = float(b[channel])
    z = math.fsum(sums.tolist()) + bias
    return {
        "op": op,
        "terms": terms,
        "rest": rest,
        "bias": bias,
        "pre_activation": z,
        "activation": record.config.get("activation", "linear"),
    }


def _dense(record, by_path, channel, pos, top, weights):
    x = _input(record, by_path)
    if pos:  # a Dense layer applied at every position of a feature map
        x = x[pos]
    kernel = _weight(record, "kernel", weights)
    x = np.asarray(x, np.float64).reshape(-1)
    sums = x * kernel[:, channel]
    keep, rest = _top(sums, top)
    terms = {
        "input": record.inputs[0],
        "channels": keep.tolist(),
        "values": x[keep],
        "weights": kernel[keep, channel],
        "sums": sums[keep],
    }
    detail = _weighted(record, sums, terms, rest, channel, "dense", weights)
    if detail["activation"] == "softmax":
        bias = _weight(record, "bias", weights)
        detail["logits"] = x @ kernel + (0.0 if bias is None else bias)
    return detail


def _pool(record, by_path, channel, pos, top, weights):
    cfg = record.config
    how = POOLS[record.type]
    x = _input(record, by_path)
    fill = -np.inf if how == "max" else np.nan
    window = conv_window(
        x, pos[0], pos[1], cfg["pool_size"], cfg["strides"], (1, 1), cfg["padding"], fill
    )[:, :, channel]
    value = np.max(window) if how == "max" else np.nanmean(window)
    return {"op": f"{how} pooling", "input": record.inputs[0], "window": window, "result": value}


def _global_pool(record, by_path, channel, pos, top, weights):
    how = GLOBAL_POOLS[record.type]
    m = np.asarray(_input(record, by_path)[..., channel], np.float64)
    detail = {"op": f"global {how} pooling", "input": record.inputs[0], "size": list(m.shape)}
    detail["result"] = float(m.max() if how == "max" else m.mean())
    if m.size <= MAX_MAP:
        detail["map"] = m
    return detail


def _batchnorm(record, by_path, channel, pos, top, weights):
    x = _input(record, by_path)
    value = float(x[tuple(pos) + (channel,)])
    gamma, beta = _weight(record, "gamma", weights), _weight(record, "beta", weights)
    gamma = 1.0 if gamma is None else float(gamma[channel])
    beta = 0.0 if beta is None else float(beta[channel])
    mean = float(_weight(record, "moving_mean", weights)[channel])
    var = float(_weight(record, "moving_variance", weights)[channel])
    eps = float(record.config.get("epsilon", 1e-3))
    result = gamma * (value - mean) / math.sqrt(var + eps) + beta
    return {
        "op": "batch normalization",
        "input": record.inputs[0],
        "x": value,
        "gamma": gamma,
        "beta": beta,
        "mean": mean,
        "variance": var,
        "epsilon": eps,
        "result": result,
    }


def _at(a: np.ndarray, index: tuple, shape: tuple) -> float:
    """`a` broadcast to `shape`, read at `index` (a (1, 1, C) gate times a (H, W, C) map)."""
    return float(np.broadcast_to(a, shape)[index])


def _merge(record, by_path, channel, pos, top, weights):
    how = MERGES[record.type]
    index = tuple(pos) + (channel,)
    shape = record.output.shape
    values = [_at(by_path[p].output, index, shape) for p in record.inputs]
    combine = {"sum": np.sum, "product": np.prod, "mean": np.mean, "max": np.max, "min": np.min}
    result = values[0] - values[1] if how == "difference" else float(combine[how](values))
    terms = [{"input": p, "value": v} for p, v in zip(record.inputs, values)]
    return {"op": how, "terms": terms, "result": result}


def _concatenate(record, by_path, channel, pos, top, weights):
    offset = 0
    for p in record.inputs:
        width = by_path[p].output.shape[-1]
        if channel < offset + width:
            value = float(by_path[p].output[tuple(pos) + (channel - offset,)])
            return {"op": "concatenate", "input": p, "channel": channel - offset, "result": value}
        offset += width
    raise ValueError(f"Channel {channel} is past the end of '{record.path}'.")


def _elementwise(record, by_path, channel, pos, top, weights):
    x = _input(record, by_path)
    index = tuple(pos) + (channel,)
    detail = {"op": "elementwise", "input": record.inputs[0] if record.inputs else None}
    if x.shape == record.output.shape:
        detail["x"] = float(x[index])
        if record.type == "Activation" or record.type.endswith("ReLU"):
            detail["activation"] = record.config.get("activation", record.type)
    return detail


def unit_breakdown(
    records: Sequence[LayerRecord],
    path: str,
    channel: int,
    position: Sequence[int] = (),
    top: int | None = 8,
    weights: dict | None = None,
) -> dict:
    """How one unit's value comes about, from a `network_trace`.

    Convolutions (Conv2D with groups, DepthwiseConv2D, SeparableConv2D through its
    effective kernel) and Dense layers: one term per input channel (the input window of
    that channel and the kernel slice, or the input value and the weight) with the sum of
    their products; the `top` terms of largest |sum| are kept and the rest summed, then
    the bias, the pre-activation and the activation (and every logit for a softmax).
    Pooling: the window and its max or mean; global pooling: the whole map;
    BatchNormalization: x, gamma, beta, moving mean and variance; merges (Add, Multiply,
    ...): each input's value; Concatenate: which input channel; others: the input value.

    Example:

    ```python
    records = network_trace(model, image)
    detail = unit_breakdown(records, "conv2", channel=3, position=(5, 7))
    detail["pre_activation"], detail["value"]
    ```

    Args:
        records: the records of one image (`network_trace`).
        path: the layer's path.
        channel: the output channel (the unit index of a Dense layer).
        position: `(y, x)` in a feature map; `()` for a vector output.
            Defaults to `()`.
        top: terms shown, largest |sum| first; the rest are summed into `rest` with
            their count. None keeps every term. Defaults to 8.
        weights: the layer's weights by name (`kernel`, `bias`, ...) as arrays, to skip
            reading them from the layer for every unit. Defaults to None (read them).

    Returns:
        A dict with `path`, `type`, `channel`, `position`, `value` (the traced output
        there), `op` and the op's fields. Convolution and dense: `terms = {"input",
        "channels", "windows" (T, kh, kw) and "kernels" (T, kh, kw), or "values" (T,)
        and "weights" (T,), "sums" (T,)}`, `rest` (`{"count", "sum"}` or None), `bias`,
        `pre_activation`, `activation` (and `logits` for a softmax). Pooling: `input`,
        `window`, `result`; BatchNorm: `x`, `gamma`, `beta`, `mean`, `variance`,
        `epsilon`, `result`; merges: `terms = [{"input", "value"}]`, `result`. Arrays are
        float64 numpy arrays.

    Raises:
        ValueError: for an unknown path, or a channel or position outside the output.
    """
    by_path = _record_map(records)
    if path not in by_path:
        raise ValueError(f"No record '{path}' in this trace; paths are {list(by_path)}.")
    record = by_path[path]
    shape = record.output.shape
    pos = tuple(int(p) for p in position)
    if len(pos) != len(shape) - 1 or not all(0 <= p < s for p, s in zip(pos, shape)):
        raise ValueError(
            f"Position {tuple(position)} does not fit the output {shape} of '{path}': give "
            f"{len(shape) - 1} indices within it."
        )
    if not 0 <= int(channel) < shape[-1]:
        raise ValueError(f"Channel {channel} is outside '{path}' ({shape[-1]} channels).")
    channel = int(channel)
    kind = record.type
    if kind in CONVS and record.layer is not None:
        how = _conv
    elif kind == "Dense":
        how = _dense
    elif kind in POOLS:
        how = _pool
    elif kind in GLOBAL_POOLS:
        how = _global_pool
    elif kind == "BatchNormalization":
        how = _batchnorm
    elif kind in MERGES and len(record.inputs) > 1:
        how = _merge
    elif kind == "Concatenate":
        how = _concatenate
    else:
        how = _elementwise
    detail = how(record, by_path, channel, pos, top, weights)
    head = {"path": path, "type": kind, "channel": channel, "position": list(pos)}
    head["value"] = float(record.output[pos + (channel,)])
    return {**head, **detail}
