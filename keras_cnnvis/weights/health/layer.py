"""Scoring one weight layer: `layer_health` runs each test on the layer's kernel (weights,
spatial structure, activity on probe outputs, movement, spectrum) into one `LayerHealth`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_cnnvis.weights.health import activity, drift, spectral, structure, verdict
from keras_cnnvis.weights.kernels import LayerKernel

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
            `keras_cnnvis.weights.kernels.KERNEL_KINDS`).
        kernel_size: `(kh, kw)`, `(0, 0)` for Dense layers on features.
        n_filters: filters (output channels; units; depthwise (channel, multiplier) pairs).
        verdict: e.g. `"converging"`, `"noise-like: not converged"`, `"not learning"`,
            `"dead units: 3/16"`, `"frozen"` (see `keras_cnnvis.weights.health.verdict`).
        problems: the individual findings joined into the verdict (`"frozen"` is not one).
        converged: False when the layer looks non-converged (a frozen layer only with
            non-finite weights).
        evidence: layer-level numbers behind the verdict (None when not measured).
        columns: the per-filter score names, in table order.
        table: per-filter scores, one array of length `n_filters` per column.
        flags: flag name -> filter indices (`noise_like`, `dead`, `saturated`,
            `non_finite`, `not_moving`, `stopped`).
        notes: what was not scored and why.
        frozen: True when `model.fit` does not train the layer (`trainable` is False for
            it or a model around it); its drift and update ratio are measured but not
            flagged per filter.
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
    frozen: bool = False

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
            "frozen": self.frozen,
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


@dataclass
class _Scores:
    """What the scoring steps of one layer fill in: evidence, per-filter columns (in table
    order), flagged filters and notes on what was not scored."""

    evidence: dict[str, Any]
    table: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def flag(self, name: str, mask: np.ndarray) -> None:
        self.flags[name] = np.flatnonzero(mask).tolist()


def _norms(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.linalg.norm(np.asarray(matrix, np.float64), axis=0).astype(np.float32)


def _nanstat(fn, x: np.ndarray) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[~np.isnan(x)]
    return float(fn(x)) if x.size else None


def _score_weights(s: _Scores, kernel: LayerKernel, trainable: bool) -> bool:
    """Norms, scale against He initialisation, non-finite filters; True if all finite."""
    m = kernel.matrix
    finite = np.all(np.isfinite(m), axis=0)
    s.table["norm"] = _norms(m)
    s.evidence.update(
        n_filters=kernel.n_filters,
        kernel_size=list(kernel.kernel_size),
        trainable=bool(trainable),
        non_finite_filters=int((~finite).sum()),
    )
    fin = m[np.isfinite(m)].astype(np.float64)
    rms = float(np.sqrt(np.mean(fin**2))) if fin.size else None
    s.evidence["weight_rms"] = rms
    s.evidence["he_scale_ratio"] = None if rms is None else rms / float(np.sqrt(2.0 / m.shape[0]))
    if not finite.all():
        s.table["non_finite"] = ~finite
        s.flag("non_finite", ~finite)
        s.notes.append("some weights are NaN or inf: scores of those filters are undefined")
    return bool(finite.all())


def _score_structure(s: _Scores, kernel: LayerKernel, alpha: float) -> None:
    """The per-filter noise test (`structure`), on spatial kernels wider than 1x1."""
    if not (kernel.spatial and min(kernel.kernel_size) > 1):
        s.evidence.update(tested_filters=None, noise_like_filters=None, noise_like_fraction=None)
        s.notes.append(
            "no spatial structure test: "
            + ("1x1 kernels" if kernel.spatial else "Dense layer on features, not on the image")
        )
        return
    n = kernel.n_filters
    scores = structure.structure_scores(kernel.filters, alpha)
    s.table["structure"] = scores.structure
    s.table["noise_p"] = scores.p_value
    s.table["noise_like"] = scores.noise_like
    s.flag("noise_like", scores.noise_like)
    tested = int(scores.testable.sum())
    s.evidence.update(
        tested_filters=tested,
        noise_like_filters=int(scores.noise_like.sum()),
        noise_like_fraction=float(scores.noise_like.sum() / tested) if tested else None,
        mean_structure=float(np.nanmean(scores.structure)) if tested else None,
        noise_alpha=float(alpha),
    )
    if tested < n:
        s.notes.append(f"{n - tested} filters not tested for structure (all-zero or non-finite)")


def _score_activity(
    s: _Scores,
    n_filters: int,
    outputs: np.ndarray | None,
    activation: str,
    input_rms: float | None,
) -> None:
    """Dead and saturated units (`activity`) on the layer's probe outputs, and the size of
    those outputs against the model's input (`signal_gain`)."""
    s.evidence.update(
        n_units=None,
        dead_units=None,
        saturated_units=None,
        dead_fraction=None,
        saturated_fraction=None,
        output_rms=None,
        signal_gain=None,
    )
    if outputs is None:
        s.notes.append("no probe data: dead and saturated units not scored")
        return
    act = activity.unit_activity(outputs, activation)
    units = len(act.dead)
    s.evidence.update(
        n_units=units,
        dead_units=int(act.dead.sum()),
        saturated_units=int(act.saturated.sum()),
        dead_fraction=float(act.dead.mean()),
        saturated_fraction=float(act.saturated.mean()),
        activation=act.activation,
        probe_outputs=act.n_outputs,
    )
    rms = _rms(outputs)
    s.evidence["output_rms"] = rms
    if rms is not None and input_rms is not None and input_rms > 0:
        s.evidence["signal_gain"] = rms / float(input_rms)
    if act.activation not in activity.RELU_FAMILY + activity.SATURATING:
        s.notes.append(
            f"'{act.activation}' activation: only units with constant output count as dead "
            "(a separate BatchNorm/ReLU layer after this one is not seen)"
        )
    if units == n_filters:
        s.table["live_fraction"] = act.live_fraction
        s.table["dead"] = act.dead
        s.table["saturated"] = act.saturated
        s.flag("dead", act.dead)
        s.flag("saturated", act.saturated)
    else:  # SeparableConv2D: outputs are pointwise units, filters are depthwise kernels
        s.evidence["dead_unit_indices"] = np.flatnonzero(act.dead).tolist()
        s.evidence["saturated_unit_indices"] = np.flatnonzero(act.saturated).tolist()
        s.notes.append(
            f"dead/saturated scored on the layer's {units} output units (the pointwise "
            "part), not per depthwise filter"
        )


def _rms(x: np.ndarray) -> float | None:
    """Root mean square of the finite values of `x` (None when there are none)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x**2))) if x.size else None


def _score_movement(
    s: _Scores,
    m: np.ndarray,
    initial: LayerKernel | None,
    previous: LayerKernel | None,
    frozen: bool,
) -> None:
    """Drift and growth since initialisation, update ratio since the previous record (not
    flagged per filter on a frozen layer: every filter stands still by design)."""
    s.evidence.update(mean_drift=None, max_drift=None, median_growth=None, median_update_ratio=None)
    if initial is not None:
        d = drift.drift(m, initial.matrix)
        g = drift.growth(m, initial.matrix)
        s.table["drift"] = d
        s.table["growth"] = g
        if not frozen:
            s.flag("not_moving", np.isfinite(d) & (d <= verdict.FROZEN_DRIFT))
        s.evidence.update(
            mean_drift=_nanstat(np.nanmean, d),
            max_drift=_nanstat(np.nanmax, d),
            median_growth=_nanstat(np.nanmedian, g),
        )
    else:
        s.notes.append("no initial weights: drift from initialisation not measured")
    if previous is not None:
        u = drift.update_ratio(m, previous.matrix)
        s.table["update_ratio"] = u
        if not frozen:
            s.flag("stopped", np.isfinite(u) & (u < verdict.STOPPED_UPDATE))
        s.evidence["median_update_ratio"] = _nanstat(np.nanmedian, u)
    else:
        s.notes.append("no previous weights: update ratio not measured")


def _score_spectrum(s: _Scores, m: np.ndarray, finite: bool) -> None:
    """Power-law exponent and spike test of the weight matrix (`spectral`)."""
    spec = spectral.spectral_scores(m)
    s.evidence.update(
        spectral_alpha=spec.alpha,
        alpha_sigma=spec.alpha_sigma,
        alpha_tail=spec.alpha_tail,
        n_eigenvalues=spec.n_eigenvalues,
        spike_ratio=spec.spike_ratio,
        spike_p=spec.spike_p,
    )
    if spec.n_eigenvalues < spectral.MIN_EIGENVALUES and finite:
        s.notes.append(f"only {spec.n_eigenvalues} eigenvalues: no power-law fit")


def layer_health(
    kernel: LayerKernel,
    trainable: bool = True,
    outputs: np.ndarray | None = None,
    activation: str = "linear",
    initial: LayerKernel | None = None,
    previous: LayerKernel | None = None,
    alpha: float = structure.ALPHA,
    input_rms: float | None = None,
) -> LayerHealth:
    """Scores one layer from its kernel (and optionally outputs and earlier kernels).

    The building block of `filter_health`; use it directly to score kernels you hold as
    arrays (e.g. `layer_kernel(model, "conv1", raw=array)`).

    Example:

    ```python
    health = layer_health(layer_kernel(model, "conv1"), initial=initial_kernel)
    health.verdict
    ```

    Args:
        kernel: the layer's current `LayerKernel`.
        trainable: whether `model.fit` trains the layer (False: the layer is frozen, see
            `keras_cnnvis.model.layers.is_trainable`). Defaults to True.
        outputs: the layer's outputs on probe data `(N, ..., units)`. Defaults to None
            (dead and saturated units not scored).
        activation: the layer's activation name. Defaults to `"linear"`.
        initial: the `LayerKernel` at initialisation. Defaults to None (no drift).
        previous: the `LayerKernel` at the previous record. Defaults to None (no update
            ratio).
        alpha: significance level of the structure test. Defaults to 0.01.
        input_rms: RMS of the model's input on the same probe data, to measure the
            layer's `signal_gain` (output RMS over input RMS). Defaults to None (not
            measured).

    Returns:
        A `LayerHealth`.
    """
    s = _Scores(evidence={})
    finite = _score_weights(s, kernel, trainable)
    _score_structure(s, kernel, alpha)
    _score_activity(s, kernel.n_filters, outputs, activation, input_rms)
    _score_movement(s, kernel.matrix, initial, previous, not trainable)
    _score_spectrum(s, kernel.matrix, finite)
    text, problems, converged = verdict.decide(s.evidence)
    return LayerHealth(
        layer=kernel.path,
        layer_type=kernel.layer_type,
        kind=kernel.kind,
        kernel_size=tuple(kernel.kernel_size),
        n_filters=kernel.n_filters,
        verdict=text,
        problems=problems,
        converged=converged,
        evidence=s.evidence,
        columns=list(s.table),
        table=s.table,
        flags={k: v for k, v in s.flags.items() if v},
        notes=s.notes,
        frozen=verdict.frozen(s.evidence),
    )
