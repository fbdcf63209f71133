"""What the Network page reads, computed from traces of the probe images: the channels shown per
layer, the folding into stages and blocks, the class probabilities, and per layer either every
value (small models) or the breakdown of each shown channel's peak unit (large models).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_cnnvis.network.trace import INPUT_TYPE, NetworkTracer
from keras_cnnvis.network.units import unit_breakdown

MODES = ("auto", "full", "units")
FULL_LIMIT = 1_000_000


def encode(array: Any) -> dict:
    """A float array as `{"dtype": "float32", "shape": [..], "data": base64}` (little-endian,
    row-major): 4 bytes per value, exact for float32, decoded by the page into a Float32Array."""
    a = np.ascontiguousarray(np.asarray(array, dtype="<f4"))
    return {"dtype": "float32", "shape": list(a.shape), "data": base64.b64encode(a).decode()}


def decode(payload: dict) -> np.ndarray:
    """The array of an `encode`d payload."""
    raw = base64.b64decode(payload["data"])
    return np.frombuffer(raw, dtype="<f4").reshape(payload["shape"]).astype(np.float32)


def encoded(value: Any) -> Any:
    """`value` with every numpy array inside encoded (see `encode`)."""
    if isinstance(value, np.ndarray):
        return encode(value)
    if isinstance(value, dict):
        return {k: encoded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encoded(v) for v in value]
    return value


def class_probabilities(output: np.ndarray, activation: str | None) -> np.ndarray | None:
    """Class probabilities from a classifier's output vector: as they are after a softmax,
    the softmax of logits, `[1 - p, p]` for one sigmoid unit and `sigmoid(z)` for one logit;
    None for outputs that are not one vector."""
    out = np.asarray(output, np.float64)
    if out.ndim != 1 or out.size == 0:
        return None
    if out.size == 1:
        p = float(out[0]) if activation == "sigmoid" else 1.0 / (1.0 + math.exp(-float(out[0])))
        return np.array([1.0 - p, p])
    if activation == "softmax":
        return out
    e = np.exp(out - out.max())
    return e / e.sum()


@dataclass
class NetworkSnapshot:
    """The traces of the probe images and what the page shows of them.

    Attributes:
        traces: per probe, the `LayerRecord`s of `network_trace`.
        mode: `"full"` (every value of every layer is logged) or `"units"` (the breakdown
            of each shown channel's peak unit).
        shown: per record path, the shown channel indices (all in full mode; else the most
            active, largest mean |value| over the probes first).
        activity: per record path, the mean |value| of every channel over the probes.
        probabilities: per probe, the class probabilities (or None).
        top: terms kept per unit breakdown in units mode.
    """

    traces: list
    mode: str
    shown: dict
    activity: dict
    probabilities: list = field(default_factory=list)
    top: int = 8

    @property
    def records(self) -> list:
        """The records of the first probe (the structure every probe shares)."""
        return self.traces[0]


def _activity(outputs: list) -> np.ndarray:
    a = np.stack([np.abs(o) for o in outputs])
    return a.reshape(-1, a.shape[-1]).mean(axis=0)


def network_snapshot(
    tracer: NetworkTracer,
    images: np.ndarray,
    mode: str = "auto",
    max_channels: int = 8,
    top: int = 8,
    full_limit: int = FULL_LIMIT,
    activation: str | None = None,
) -> NetworkSnapshot:
    """Traces the probe images and chooses what the Network page shows.

    Args:
        tracer: a `NetworkTracer` of the model.
        images: the probe images `(N, H, W, C)`.
        mode: `"full"`, `"units"`, or `"auto"`: full when every output of every layer for
            every probe, plus the weights, holds at most `full_limit` values.
            Defaults to `"auto"`.
        max_channels: shown channels per layer in units mode. Defaults to 8.
        top: terms kept per unit breakdown (the rest are summed). Defaults to 8.
        full_limit: see `mode`. Defaults to 1,000,000.
        activation: the model's final activation name (for class probabilities).
            Defaults to None.

    Returns:
        A `NetworkSnapshot`.

    Raises:
        ValueError: for an unknown mode or `max_channels` / `top` below 1.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
    if int(max_channels) < 1 or int(top) < 1:
        raise ValueError(f"max_channels and top must be >= 1; got {max_channels}, {top}.")
    traces = tracer(images)
    if mode == "auto":
        values = sum(r.output.size for t in traces for r in t)
        values += sum(int(np.prod(w.shape)) for w in tracer.model.weights)
        mode = "full" if values <= full_limit else "units"
    shown, activity = {}, {}
    for k, record in enumerate(traces[0]):
        outs = [t[k].output for t in traces]
        act = _activity(outs) if record.output.ndim else np.zeros(0)
        activity[record.path] = act
        if mode == "full" or len(act) <= max_channels:
            shown[record.path] = np.arange(len(act))
        else:
            shown[record.path] = np.argsort(-act, kind="stable")[: int(max_channels)]
    probs = [class_probabilities(t[-1].output, activation) for t in traces]
    return NetworkSnapshot(traces, mode, shown, activity, probs, int(top))


def segments(tracer: NetworkTracer) -> list:
    """The folding of the graph: per record, the index of its block (the nodes after one
    block output of the anatomy up to the next; the input is in the first block and the
    head after the feature map in the last)."""
    ends = set(tracer.anatomy.blocks)
    seg, out = 0, [0]
    for node in tracer.nodes:
        out.append(seg)
        if node.path in ends:
            seg += 1
    return out


def _stages(tracer: NetworkTracer) -> dict:
    stage_of = {}
    for k, stage in enumerate(tracer.anatomy.stages):
        for path in stage.layers:
            stage_of.setdefault(path, k)
    return stage_of


def overview_payload(
    tracer: NetworkTracer,
    snap: NetworkSnapshot,
    blocks: list,
    scales: list,
    class_names: list | None = None,
    top_classes: int = 10,
) -> dict:
    """The `json/network/overview` record: the graph, the shown channels, the atlas blocks,
    the folding and the class probabilities (see docs/log-format.md)."""
    seg, stage_of = segments(tracer), _stages(tracer)
    layers = []
    for k, record in enumerate(snap.records):
        path = record.path
        entry = {
            "path": path,
            "type": record.type,
            "config": record.config,
            "inputs": record.inputs,
            "shape": list(record.output.shape),
            "channels": snap.shown[path].tolist(),
            "activity": [float(snap.activity[path][c]) for c in snap.shown[path]],
            "block": seg[k],
            "stage": stage_of.get(path),
            "atlas": blocks[k],
            "scales": scales[k],
        }
        if record.output.ndim == 1:
            entry["values"] = [
                [float(t[k].output[c]) for c in snap.shown[path]] for t in snap.traces
            ]
        layers.append(entry)
    probes = []
    for p in snap.probabilities:
        if p is None:
            probes.append(None)
            continue
        order = np.argsort(-p, kind="stable")[:top_classes]
        probes.append({"classes": order.tolist(), "probabilities": p[order].tolist()})
    anatomy = tracer.anatomy
    return {
        "model": tracer.model.name,
        "mode": snap.mode,
        "n_probes": len(snap.traces),
        "input_shape": list(anatomy.input_shape),
        "layers": layers,
        "feature_map": anatomy.feature_map,
        "stages": [{"resolution": list(s.resolution), "output": s.output} for s in anatomy.stages],
        "blocks": list(anatomy.blocks),
        "probes": probes,
        "class_names": list(class_names) if class_names is not None else None,
        "top": snap.top,
    }


def _weights(record) -> dict:
    layer = record.layer
    return {w.name: np.asarray(w, np.float32) for w in getattr(layer, "weights", ())}


def _peak(output: np.ndarray, channel: int) -> tuple:
    """The position of the channel's strongest unit (largest |value|; () for a vector)."""
    if output.ndim == 1:
        return ()
    strength = np.abs(output[..., channel])
    return tuple(int(i) for i in np.unravel_index(np.argmax(strength), output.shape[:-1]))


def layer_payload(snap: NetworkSnapshot, k: int) -> dict:
    """The `json/network/layer/<path>` record of record `k`: in full mode its outputs for
    every probe and its weights; in units mode the breakdown of each shown channel's peak
    unit for every probe (`unit_breakdown`), with arrays encoded (see `encode`)."""
    record = snap.records[k]
    base = {"path": record.path, "type": record.type, "mode": snap.mode}
    if snap.mode == "full":
        base["outputs"] = [encode(t[k].output) for t in snap.traces]
        base["weights"] = {name: encode(w) for name, w in _weights(record).items()}
        if record.input_value is not None:
            base["input_values"] = [encode(t[k].input_value) for t in snap.traces]
        return base
    units, weights = [], {n: w.astype(np.float64) for n, w in _weights(record).items()}
    spatial = record.output.ndim in (1, 3) and record.type != INPUT_TYPE
    for trace in snap.traces:
        per_probe = []
        for c in snap.shown[record.path] if spatial else ():
            detail = unit_breakdown(
                trace, record.path, int(c), _peak(trace[k].output, int(c)), snap.top, weights
            )
            per_probe.append(encoded(detail))
        units.append(per_probe)
    base["units"] = units
    return base
