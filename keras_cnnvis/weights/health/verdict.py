"""The rules that turn a layer's scores into a verdict ("converging", "noise-like: not
converged", "not learning", "dead units: k/N", "frozen", ...), with every threshold named here.

A layer is **frozen** when `model.fit` does not train its weights (evidence `trainable` is
False: the layer, or the model it sits in, has `trainable=False`, e.g. a base frozen for
transfer learning). Its verdict is `frozen`, followed by what its weights and outputs show.
The rules about training (2, 7, 8 and the "not converged" of 3) do not apply to it, and it
counts as non-converged only for non-finite weights (1), which break the forward pass whether
the layer trains or not.

Problems are checked in this order and joined with "; " when several apply:

1. `non-finite weights: k/N filters` - any NaN/inf weight.
2. `not learning` - a trainable layer whose initial weights were given and no filter moved
   (largest drift <= `FROZEN_DRIFT`).
3. `noise-like: not converged` - at least `NOISE_LAYER_FRACTION` of the tested filters are
   noise-like and the kernels are at least `MIN_STRUCTURE_KERNEL` wide (on a frozen layer it
   reads `noise-like filters`: random weights, not a lack of training). For smaller kernels
   the same finding reads `no smooth structure (3x3: weak evidence)` and does not count as
   non-converged (see `keras_cnnvis.weights.health.structure`).
4. `dead units: k/N` - units never active, or flat, on the probe data (see
   `keras_cnnvis.weights.health.activity`).
5. `saturated units: k/N`.
6. `vanishing signal: outputs G of the input` - the RMS of the layer's outputs is below
   `VANISHING_GAIN` times the RMS of the probe images (the model's input): the signal has
   shrunk by more than six orders of magnitude on its way here, close to float32's
   precision, so the layers after it see mostly rounding. A finding, never non-converged.
7. `unstable: weights grew Gx` - median growth of filter norms since initialisation above
   `EXPLODING_GROWTH` while the weights are also large in absolute terms (RMS above
   `EXPLODING_SCALE` times the He scale `sqrt(2 / fan_in)`, so a layer that starts from a
   deliberately tiny initialisation may grow freely); `unstable: filters change P% per
   update` - median update ratio above `UNSTABLE_UPDATE`.
8. `stopped moving` - median update ratio below `STOPPED_UPDATE` (alone, the verdict reads
   `converged (stopped moving)`).

With no problem the verdict is `converging` (`frozen` for a frozen layer). The spectral scores
(power-law alpha, spike test) are reported as evidence only: on layers with a few dozen
filters they are too noisy to decide. A trainable layer is "non-converged" (named in the
callback's end-of-training warning) for problems 1, 2, 3 (except the weak small-kernel
finding) and 7, and when all of its units are dead; a frozen layer only for problem 1.
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

VANISHING_GAIN = 1e-6
"""Output RMS over input RMS below which a layer's signal has vanished (a random frozen
MobileNetV2, alpha 0.35, 96 px: 2e-3 after block 1, 1e-4 to 1e-5 by block 4, 1e-7 by block 7
and 5e-11 at its last convolution; the demo's layers: 0.1 to 10)."""

THRESHOLDS = {
    "noise_layer_fraction": NOISE_LAYER_FRACTION,
    "min_structure_kernel": MIN_STRUCTURE_KERNEL,
    "frozen_drift": FROZEN_DRIFT,
    "stopped_update": STOPPED_UPDATE,
    "unstable_update": UNSTABLE_UPDATE,
    "exploding_growth": EXPLODING_GROWTH,
    "exploding_scale": EXPLODING_SCALE,
    "vanishing_gain": VANISHING_GAIN,
}


def _present(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def frozen(evidence: dict) -> bool:
    """Whether the evidence describes a layer `model.fit` does not train."""
    return evidence.get("trainable") is False


def decide(evidence: dict) -> tuple[str, list[str], bool]:
    """Applies the rules to a layer's evidence.

    Args:
        evidence: the layer-level scores (keys as in `LayerHealth.evidence`: `n_filters`,
            `non_finite_filters`, `trainable`, `max_drift`, `noise_like_fraction`,
            `kernel_size`, `dead_units`, `saturated_units`, `signal_gain`,
            `median_growth`, `he_scale_ratio`, `median_update_ratio`); missing or None
            entries are skipped.

    Returns:
        `(verdict, problems, converged)`. A frozen layer's verdict starts with `frozen`,
        which is not one of the problems.
    """
    n = int(evidence.get("n_filters") or 0)
    units = evidence.get("n_units", n)
    is_frozen = frozen(evidence)
    problems: list[str] = []
    non_converged = False
    bad = evidence.get("non_finite_filters") or 0
    if bad:
        problems.append(f"non-finite weights: {bad}/{n} filters")
        non_converged = True
    max_drift = evidence.get("max_drift")
    not_moving = not is_frozen and _present(max_drift) and max_drift <= FROZEN_DRIFT
    if not_moving:
        problems.append("not learning")
        non_converged = True
    noise = evidence.get("noise_like_fraction")
    if _present(noise) and noise >= NOISE_LAYER_FRACTION:
        kh, kw = evidence.get("kernel_size") or (0, 0)
        if min(kh, kw) < MIN_STRUCTURE_KERNEL:
            problems.append(f"no smooth structure ({kh}x{kw}: weak evidence)")
        elif is_frozen:
            problems.append("noise-like filters")
        else:
            problems.append("noise-like: not converged")
            non_converged = True
    dead = evidence.get("dead_units")
    if dead:
        problems.append(f"dead units: {dead}/{units}")
        if dead == units and not is_frozen:
            non_converged = True
    saturated = evidence.get("saturated_units")
    if saturated:
        problems.append(f"saturated units: {saturated}/{units}")
    gain = evidence.get("signal_gain")
    if _present(gain) and gain < VANISHING_GAIN:
        problems.append(f"vanishing signal: outputs {gain:.1e} of the input")
    if is_frozen:
        return "; ".join(["frozen", *problems]), problems, not non_converged
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
    stopped = _present(update) and update < STOPPED_UPDATE and not not_moving
    if stopped and problems:
        problems.append("stopped moving")
    if problems:
        return "; ".join(problems), problems, not non_converged
    if stopped:
        return "converged (stopped moving)", [], True
    return "converging", [], True
