"""The rules that turn a layer's scores into a verdict ("converging", "noise-like: not
converged", "not learning", "dead units: k/N", ...), with every threshold named here.

Problems are checked in this order and joined with "; " when several apply:

1. `non-finite weights: k/N filters` - any NaN/inf weight.
2. `not learning` - the layer has `trainable=False`, or initial weights were given and no
   filter moved (largest drift <= `FROZEN_DRIFT`).
3. `noise-like: not converged` - at least `NOISE_LAYER_FRACTION` of the tested filters are
   noise-like and the kernels are at least `MIN_STRUCTURE_KERNEL` wide. For smaller kernels
   the same finding reads `no smooth structure (3x3: weak evidence)` and does not count as
   non-converged (see `keras_cnnvis.weights.health.structure`).
4. `dead units: k/N` - units never active on the probe data.
5. `saturated units: k/N`.
6. `unstable: weights grew Gx` - median growth of filter norms since initialisation above
   `EXPLODING_GROWTH` while the weights are also large in absolute terms (RMS above
   `EXPLODING_SCALE` times the He scale `sqrt(2 / fan_in)`, so a layer that starts from a
   deliberately tiny initialisation may grow freely); `unstable: filters change P% per
   update` - median update ratio above `UNSTABLE_UPDATE`.
7. `stopped moving` - median update ratio below `STOPPED_UPDATE` (alone, the verdict reads
   `converged (stopped moving)`).

With no problem the verdict is `converging`. The spectral scores (power-law alpha, spike test)
are reported as evidence only: on layers with a few dozen filters they are too noisy to decide.
A layer is "non-converged" (named in the callback's end-of-training warning) for problems 1-3
(except the weak small-kernel finding) and 6, and when all of its units are dead.
"""

from __future__ import annotations

import math
from typing import Any

NOISE_LAYER_FRACTION = 0.75
"""A layer is noise-like when at least this share of its tested filters is noise-like (an
untrained layer: 99 % on average at alpha = 0.01, 94 % at least over 20 demo seeds; the demo's
conv1: 50-81 % after one epoch, 0 % from epoch 2-3 on)."""

MIN_STRUCTURE_KERNEL = 5
"""Kernels at least this wide (both sides) give conclusive structure verdicts."""

FROZEN_DRIFT = 1e-6
"""Largest per-filter drift at or below which a layer has not moved since initialisation."""

STOPPED_UPDATE = 1e-3
"""Median per-filter update ratio below which a layer has stopped moving (the demo's layers
move 1-25 % per epoch while learning)."""

UNSTABLE_UPDATE = 0.5
"""Median per-filter update ratio above which a layer jumps around."""

EXPLODING_GROWTH = 10.0
"""Median growth of filter norms (vs initialisation) above which weights are blowing up (the
demo's layers stay below 2x; a 100x-too-high learning rate gives 25x and more)."""

EXPLODING_SCALE = 3.0
"""...and whose weight RMS exceeds this multiple of `sqrt(2 / fan_in)` (a 300x-too-high Adam
learning rate: 8-9x; trained demo layers: below 1.5x)."""

THRESHOLDS = {
    "noise_layer_fraction": NOISE_LAYER_FRACTION,
    "min_structure_kernel": MIN_STRUCTURE_KERNEL,
    "frozen_drift": FROZEN_DRIFT,
    "stopped_update": STOPPED_UPDATE,
    "unstable_update": UNSTABLE_UPDATE,
    "exploding_growth": EXPLODING_GROWTH,
    "exploding_scale": EXPLODING_SCALE,
}


def _present(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def decide(evidence: dict) -> tuple[str, list[str], bool]:
    """Applies the rules to a layer's evidence.

    Args:
        evidence: the layer-level scores (keys as in `LayerHealth.evidence`: `n_filters`,
            `non_finite_filters`, `trainable`, `max_drift`, `noise_like_fraction`,
            `kernel_size`, `dead_units`, `saturated_units`, `median_growth`,
            `he_scale_ratio`, `median_update_ratio`); missing or None entries are skipped.

    Returns:
        `(verdict, problems, converged)`.
    """
    n = int(evidence.get("n_filters") or 0)
    problems: list[str] = []
    non_converged = False
    bad = evidence.get("non_finite_filters") or 0
    if bad:
        problems.append(f"non-finite weights: {bad}/{n} filters")
        non_converged = True
    frozen = evidence.get("trainable") is False
    max_drift = evidence.get("max_drift")
    if _present(max_drift) and max_drift <= FROZEN_DRIFT:
        frozen = True
    if frozen:
        problems.append("not learning")
        non_converged = True
    noise = evidence.get("noise_like_fraction")
    if _present(noise) and noise >= NOISE_LAYER_FRACTION:
        kh, kw = evidence.get("kernel_size") or (0, 0)
        if min(kh, kw) >= MIN_STRUCTURE_KERNEL:
            problems.append("noise-like: not converged")
            non_converged = True
        else:
            problems.append(f"no smooth structure ({kh}x{kw}: weak evidence)")
    dead = evidence.get("dead_units")
    if dead:
        problems.append(f"dead units: {dead}/{evidence.get('n_units', n)}")
        if dead == evidence.get("n_units", n):
            non_converged = True
    saturated = evidence.get("saturated_units")
    if saturated:
        problems.append(f"saturated units: {saturated}/{evidence.get('n_units', n)}")
    growth = evidence.get("median_growth")
    scale = evidence.get("he_scale_ratio")
    large = not _present(scale) or scale > EXPLODING_SCALE
    if _present(growth) and growth > EXPLODING_GROWTH and large:
        problems.append(f"unstable: weights grew {growth:.3g}x")
        non_converged = True
    update = evidence.get("median_update_ratio")
    if _present(update) and update > UNSTABLE_UPDATE:
        problems.append(f"unstable: filters change {100 * update:.0f}% per update")
        non_converged = True
    stopped = _present(update) and update < STOPPED_UPDATE and not frozen
    if stopped and problems:
        problems.append("stopped moving")
    if problems:
        return "; ".join(problems), problems, not non_converged
    if stopped:
        return "converged (stopped moving)", [], True
    return "converging", [], True
