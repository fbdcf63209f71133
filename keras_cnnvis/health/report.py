"""`filter_health`: per-filter and per-layer health scores of weight layers (structure vs
noise, dead and saturated units, drift and update ratio, spectral signals) with a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import keras
import numpy as np

from keras_cnnvis.activations import check_probe
from keras_cnnvis.filters import LayerKernel, has_kernel, kernel_array, layer_kernel
from keras_cnnvis.model import FeatureExtractor, LayerInfo, find_layers, iter_layers
from keras_cnnvis.health import activity, drift, spectral, structure, verdict

SCALARS = (
    "noise_like_fraction",
    "dead_fraction",
    "saturated_fraction",
    "mean_drift",
    "median_update_ratio",
    "spectral_alpha",
    "spike_ratio",
)
"""Layer-level scores the callback writes as scalars `health/<layer>/<score>`."""


@dataclass
class LayerHealth:
    """The health of one weight layer.

    Attributes:
        layer: the layer's path.
        layer_type: its class name.
        kind: `"conv"`, `"depthwise"`, `"dense_image"` or `"dense"` (see
            `keras_cnnvis.filters.KERNEL_KINDS`).
        kernel_size: `(kh, kw)`, `(0, 0)` for Dense layers on features.
        n_filters: filters (output channels; units; depthwise (channel, multiplier) pairs).
        verdict: e.g. `"converging"`, `"noise-like: not converged"`, `"not learning"`,
            `"dead units: 3/16"` (see `keras_cnnvis.health.verdict`).
        problems: the individual findings joined into the verdict.
        converged: False when the layer looks non-converged.
        evidence: layer-level numbers behind the verdict (None when not measured).
        columns: the per-filter score names, in table order.
        table: per-filter scores, one array of length `n_filters` per column.
        flags: flag name -> filter indices (`noise_like`, `dead`, `saturated`,
            `non_finite`, `not_moving`, `stopped`).
        notes: what was not scored and why.
    """

    layer: str
    layer_type: str
    kind: str
    kernel_size: tuple[int, int]
    n_filters: int
    verdict: str
    problems: list[str]
    converged: bool
    evidence: dict[str, Any]
    columns: list[str]
    table: dict[str, np.ndarray]
    flags: dict[str, list[int]]
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[int]:
        """Every filter index carrying at least one flag, sorted."""
        return sorted({i for indices in self.flags.values() for i in indices})

    def rows(self) -> list[dict[str, Any]]:
        """The per-filter table as JSON-ready rows `{"index": i, <column>: value}`."""
        out = []
        for i in range(self.n_filters):
            row: dict[str, Any] = {"index": i}
            for col in self.columns:
                row[col] = _cell(self.table[col][i])
            out.append(row)
        return out

    def payload(self) -> dict[str, Any]:
        """The `health` JSON record (see docs/log-format.md)."""
        return {
            "layer": self.layer,
            "layer_type": self.layer_type,
            "kind": self.kind,
            "kernel_size": list(self.kernel_size),
            "n_filters": self.n_filters,
            "verdict": self.verdict,
            "problems": list(self.problems),
            "converged": self.converged,
            "evidence": {k: _cell(v) for k, v in self.evidence.items()},
            "notes": list(self.notes),
            "thresholds": dict(verdict.THRESHOLDS),
            "columns": ["index", *self.columns],
            "filters": self.rows(),
            "flags": {k: list(v) for k, v in self.flags.items()},
        }

    def scalars(self) -> dict[str, float]:
        """The layer-level scores in `SCALARS` that were measured (finite or not)."""
        return {k: float(self.evidence[k]) for k in SCALARS if self.evidence.get(k) is not None}


def _cell(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_cell(v) for v in value]
    return value


class HealthReport(Mapping):
    """The `LayerHealth` of each scored layer, by path (also looked up by bare name).

    Example:

    ```python
    report = filter_health(model, probe=x_val[:32])
    print(report.table())
    report["conv1"].verdict
    ```
    """

    def __init__(self, layers: dict[str, LayerHealth]):
        self._layers = dict(layers)

    def __getitem__(self, key: str) -> LayerHealth:
        if key in self._layers:
            return self._layers[key]
        matches = [h for p, h in self._layers.items() if p.split("/")[-1] == key]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def unhealthy(self) -> list[LayerHealth]:
        """Layers with at least one problem, in model order."""
        return [h for h in self._layers.values() if h.problems]

    def non_converged(self) -> list[LayerHealth]:
        """Layers that look non-converged, in model order."""
        return [h for h in self._layers.values() if not h.converged]

    def table(self) -> str:
        """A plain-text table: one line per layer with the key scores and the verdict."""
        head = (
            "layer",
            "type",
            "kernel",
            "filters",
            "noise-like",
            "dead",
            "drift",
            "update",
            "alpha",
            "spike",
            "verdict",
        )
        lines = [head]
        for h in self._layers.values():
            e = h.evidence
            kh, kw = h.kernel_size
            lines.append(
                (
                    h.layer,
                    h.layer_type,
                    f"{kh}x{kw}" if kh else "-",
                    str(h.n_filters),
                    _count(e.get("noise_like_filters"), e.get("tested_filters")),
                    _count(e.get("dead_units"), e.get("n_units")),
                    _num(e.get("mean_drift")),
                    _num(e.get("median_update_ratio")),
                    _num(e.get("spectral_alpha"), 1),
                    _num(e.get("spike_ratio"), 2),
                    h.verdict,
                )
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(head) - 1)]
        out = []
        for row in lines:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths)]
            out.append("  ".join(cells + [row[-1]]))
        return "\n".join(out)


def _count(k: Any, n: Any) -> str:
    return "-" if k is None or n is None else f"{int(k)}/{int(n)}"


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return "nan" if x != x else "inf"
    return f"{x:.{digits}f}" if digits < 3 else f"{x:.3g}"


def health_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer `filter_health` scores by default: 2-D convolutions of any kind and Dense
    layers, in forward order (nested models included)."""
    return [i for i in iter_layers(model) if has_kernel(i.layer) and i.layer.built]


def snapshot_kernels(model: keras.Model, layers: Any = None) -> dict[str, np.ndarray]:
    """Copies the kernels of weight layers, to pass later as `initial_weights` or
    `previous_weights` of `filter_health`.

    Example:

    ```python
    initial = snapshot_kernels(model)
    model.fit(x, y, epochs=5)
    report = filter_health(model, initial_weights=initial)
    ```

    Args:
        model: a Keras model of any kind.
        layers: layer references. Defaults to None (every layer `filter_health` scores).

    Returns:
        A dict from layer path to a float32 copy of its kernel variable.
    """
    infos = health_layers(model) if layers is None else find_layers(model, layers)
    return {info.path: kernel_array(info) for info in infos}


def _weights_for(source: Any, model: keras.Model, info: LayerInfo, what: str) -> np.ndarray | None:
    """The kernel for `info` from a snapshot dict or a model with the same layers."""
    if source is None:
        return None
    if isinstance(source, keras.Model):
        try:
            other = find_layers(source, info.path)[0]
        except ValueError as error:
            raise ValueError(
                f"{what} model '{source.name}' has no layer '{info.path}': {error}"
            ) from None
        return kernel_array(other)
    if not isinstance(source, Mapping):
        raise ValueError(
            f"{what} must be a dict from layer path to kernel array (see "
            f"snapshot_kernels) or a model with the same layers; got {type(source).__name__}."
        )
    for key in (info.path, info.name):
        if key in source:
            return np.asarray(source[key], np.float32)
    return None


def _norms(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.linalg.norm(np.asarray(matrix, np.float64), axis=0).astype(np.float32)


def layer_health(
    kernel: LayerKernel,
    trainable: bool = True,
    outputs: np.ndarray | None = None,
    activation: str = "linear",
    initial: LayerKernel | None = None,
    previous: LayerKernel | None = None,
    alpha: float = structure.ALPHA,
) -> LayerHealth:
    """Scores one layer from its kernel (and optionally outputs and earlier kernels).

    The building block of `filter_health`; use it directly to score kernels you hold as
    arrays (e.g. `layer_kernel(model, "conv1", raw=array)`).

    Args:
        kernel: the layer's current `LayerKernel`.
        trainable: the layer's `trainable` flag. Defaults to True.
        outputs: the layer's outputs on probe data `(N, ..., units)`. Defaults to None
            (dead and saturated units not scored).
        activation: the layer's activation name. Defaults to `"linear"`.
        initial: the `LayerKernel` at initialisation. Defaults to None (no drift).
        previous: the `LayerKernel` at the previous record. Defaults to None (no update
            ratio).
        alpha: significance level of the structure test. Defaults to 0.01.

    Returns:
        A `LayerHealth`.
    """
    n = kernel.n_filters
    m = kernel.matrix
    finite = np.all(np.isfinite(m), axis=0)
    table: dict[str, np.ndarray] = {"norm": _norms(m)}
    flags: dict[str, list[int]] = {}
    notes: list[str] = []
    ev: dict[str, Any] = {
        "n_filters": n,
        "kernel_size": list(kernel.kernel_size),
        "trainable": bool(trainable),
        "non_finite_filters": int((~finite).sum()),
    }
    fin = m[np.isfinite(m)].astype(np.float64)
    rms = float(np.sqrt(np.mean(fin**2))) if fin.size else None
    ev["weight_rms"] = rms
    ev["he_scale_ratio"] = None if rms is None else rms / float(np.sqrt(2.0 / m.shape[0]))
    if not finite.all():
        table["non_finite"] = ~finite
        flags["non_finite"] = np.flatnonzero(~finite).tolist()
        notes.append("some weights are NaN or inf: scores of those filters are undefined")

    # Spatial structure.
    if kernel.spatial and min(kernel.kernel_size) > 1:
        s = structure.structure_scores(kernel.filters, alpha)
        table["structure"] = s.structure
        table["noise_p"] = s.p_value
        table["noise_like"] = s.noise_like
        flags["noise_like"] = np.flatnonzero(s.noise_like).tolist()
        tested = int(s.testable.sum())
        ev.update(
            tested_filters=tested,
            noise_like_filters=int(s.noise_like.sum()),
            noise_like_fraction=float(s.noise_like.sum() / tested) if tested else None,
            mean_structure=float(np.nanmean(s.structure)) if tested else None,
            noise_alpha=float(alpha),
        )
        if tested < n:
            notes.append(f"{n - tested} filters not tested for structure (all-zero or non-finite)")
    else:
        ev.update(tested_filters=None, noise_like_filters=None, noise_like_fraction=None)
        notes.append(
            "no spatial structure test: "
            + ("1x1 kernels" if kernel.spatial else "Dense layer on features, not on the image")
        )

    # Activity on probe data.
    ev.update(
        n_units=None,
        dead_units=None,
        saturated_units=None,
        dead_fraction=None,
        saturated_fraction=None,
    )
    if outputs is not None:
        act = activity.unit_activity(outputs, activation)
        units = len(act.dead)
        ev.update(
            n_units=units,
            dead_units=int(act.dead.sum()),
            saturated_units=int(act.saturated.sum()),
            dead_fraction=float(act.dead.mean()),
            saturated_fraction=float(act.saturated.mean()),
            activation=act.activation,
            probe_outputs=act.n_outputs,
        )
        if act.activation not in activity.RELU_FAMILY + activity.SATURATING:
            notes.append(
                f"'{act.activation}' activation: only units with constant output count as dead "
                "(a separate BatchNorm/ReLU layer after this one is not seen)"
            )
        if units == n:
            table["live_fraction"] = act.live_fraction
            table["dead"] = act.dead
            table["saturated"] = act.saturated
            flags["dead"] = np.flatnonzero(act.dead).tolist()
            flags["saturated"] = np.flatnonzero(act.saturated).tolist()
        else:  # SeparableConv2D: outputs are pointwise units, filters are depthwise kernels
            ev["dead_unit_indices"] = np.flatnonzero(act.dead).tolist()
            ev["saturated_unit_indices"] = np.flatnonzero(act.saturated).tolist()
            notes.append(
                f"dead/saturated scored on the layer's {units} output units (the pointwise "
                "part), not per depthwise filter"
            )
    else:
        notes.append("no probe data: dead and saturated units not scored")

    # Movement.
    ev.update(mean_drift=None, max_drift=None, median_growth=None, median_update_ratio=None)
    if initial is not None:
        d = drift.drift(m, initial.matrix)
        g = drift.growth(m, initial.matrix)
        table["drift"] = d
        table["growth"] = g
        not_moving = np.isfinite(d) & (d <= verdict.FROZEN_DRIFT)
        flags["not_moving"] = np.flatnonzero(not_moving).tolist()
        ev.update(
            mean_drift=_nanstat(np.nanmean, d),
            max_drift=_nanstat(np.nanmax, d),
            median_growth=_nanstat(np.nanmedian, g),
        )
    else:
        notes.append("no initial weights: drift from initialisation not measured")
    if previous is not None:
        u = drift.update_ratio(m, previous.matrix)
        table["update_ratio"] = u
        flags["stopped"] = np.flatnonzero(np.isfinite(u) & (u < verdict.STOPPED_UPDATE)).tolist()
        ev["median_update_ratio"] = _nanstat(np.nanmedian, u)
    else:
        notes.append("no previous weights: update ratio not measured")

    # Spectrum of the weight matrix.
    spec = spectral.spectral_scores(m)
    ev.update(
        spectral_alpha=spec.alpha,
        alpha_sigma=spec.alpha_sigma,
        alpha_tail=spec.alpha_tail,
        n_eigenvalues=spec.n_eigenvalues,
        spike_ratio=spec.spike_ratio,
        spike_p=spec.spike_p,
    )
    if spec.n_eigenvalues < spectral.MIN_EIGENVALUES and finite.all():
        notes.append(f"only {spec.n_eigenvalues} eigenvalues: no power-law fit")

    text, problems, converged = verdict.decide(ev)
    flags = {k: v for k, v in flags.items() if v}
    return LayerHealth(
        layer=kernel.path,
        layer_type=kernel.layer_type,
        kind=kernel.kind,
        kernel_size=tuple(kernel.kernel_size),
        n_filters=n,
        verdict=text,
        problems=problems,
        converged=converged,
        evidence=ev,
        columns=list(table),
        table=table,
        flags=flags,
        notes=notes,
    )


def _nanstat(fn, x: np.ndarray) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[~np.isnan(x)]
    return float(fn(x)) if x.size else None


def filter_health(
    model: keras.Model,
    layer: Any = None,
    probe: Any = None,
    initial_weights: Any = None,
    previous_weights: Any = None,
    alpha: float = structure.ALPHA,
    batch_size: int = 64,
    extractor: FeatureExtractor | None = None,
) -> HealthReport:
    """Diagnoses weight layers: structured or noise-like filters, dead and saturated units,
    drift from initialisation, update ratio, spectral signals, and a verdict per layer.

    Definitions and thresholds: `keras_cnnvis.health.structure` (noise test),
    `.activity` (dead/saturated), `.drift` (movement), `.spectral` (alpha, spikes) and
    `.verdict` (the rules). NaN/inf weights are reported as such, never raised.

    Example:

    ```python
    initial = snapshot_kernels(model)
    model.fit(x, y, epochs=5)
    report = filter_health(model, probe=x_val[:32], initial_weights=initial)
    print(report.table())
    ```

    Args:
        model: a Keras model of any kind with one image input.
        layer: a layer reference or a list of them. Defaults to None (every 2-D
            convolution and Dense layer).
        probe: images `(N, H, W, C)` for dead/saturated units. Defaults to None (not
            scored).
        initial_weights: kernels at initialisation: a dict from layer path (or name) to
            the kernel array (see `snapshot_kernels`), or a model with the same layers.
            Defaults to None (no drift).
        previous_weights: kernels at the previous record (usually the previous epoch),
            same forms. Defaults to None (no update ratio).
        alpha: significance level of the per-filter structure test. Defaults to 0.01.
        batch_size: probe images per compiled call. Defaults to 64.
        extractor: a `FeatureExtractor` over exactly these layers to reuse (callbacks keep
            one). Defaults to None (a new one when `probe` is given).

    Returns:
        A `HealthReport` (a mapping from layer path to `LayerHealth`).

    Raises:
        ValueError: for unknown layers, layers without a kernel (the message names the
            kinds that have one), probe images of the wrong shape, or weights of the
            wrong shape.
    """
    if layer is None:
        infos = health_layers(model)
        if not infos:
            raise ValueError(
                f"Model '{model.name}' has no layer with a kernel (Conv2D, "
                "Conv2DTranspose, DepthwiseConv2D, SeparableConv2D or Dense)."
            )
    else:
        infos = find_layers(model, layer)
    kernels = [layer_kernel(model, info.layer) for info in infos]  # raises for no kernel
    outputs: list[np.ndarray | None] = [None] * len(infos)
    if probe is not None:
        images = check_probe(model, probe)
        if extractor is None:
            extractor = FeatureExtractor(model, [i.layer for i in infos], batch_size)
        feats, _ = extractor(images)
        outputs = list(feats)
    result = {}
    for info, k, out in zip(infos, kernels, outputs):
        ini = _weights_for(initial_weights, model, info, "initial_weights")
        prev = _weights_for(previous_weights, model, info, "previous_weights")
        result[info.path] = layer_health(
            k,
            trainable=bool(info.layer.trainable),
            outputs=out,
            activation=activity.activation_name(info.layer),
            initial=None if ini is None else layer_kernel(model, info.layer, raw=ini),
            previous=None if prev is None else layer_kernel(model, info.layer, raw=prev),
            alpha=alpha,
        )
    return HealthReport(result)
