"""Dead and saturated units: how each unit of a layer responds to probe data.

A unit's outputs are the layer's own outputs (after its fused activation) at every position of
every probe image. Whether an output passes gradient depends on the activation:

- relu: live where output > 0. A unit that is never live is **dead** (it never fires, so it
  never learns).
- relu6: live where 0 < output < 6; outputs >= 6 are saturated.
- sigmoid / hard_sigmoid: live where the derivative is at least 5 % of its maximum
  (0.0128 < output < 0.9872 for the sigmoid, strictly inside (0, 1) for hard_sigmoid).
- tanh: live where |output| < 0.9747 (derivative >= 5 % of its maximum).
- other activations (linear, elu, gelu, ...): every output is live.

A unit is dead when its output is constant over all probes and positions, or (relu family)
never positive. It is **saturated** when at least 99 % of its outputs are in a saturated region
(relu6, sigmoid, tanh). `live_fraction` is the share of outputs that pass gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SATURATED_SHARE = 0.99
"""A unit is saturated when at least this share of its outputs is saturated."""

_SIGMOID_LO = 0.01282  # sigmoid' = y (1 - y) equals 5 % of its maximum 0.25 here
_TANH_HI = 0.97468  # tanh' = 1 - y^2 equals 5 % of its maximum 1 here
RELU_FAMILY = ("relu", "relu6")
SATURATING = ("relu6", "sigmoid", "hard_sigmoid", "tanh")


@dataclass
class UnitActivity:
    """Per-unit activity on probe data (arrays of length n_units).

    Attributes:
        live_fraction: share of outputs that pass gradient.
        saturated_fraction: share of outputs in a saturated region (0 for non-saturating
            activations).
        max_output, mean_output: over all probes and positions.
        dead: never live (relu family) or constant.
        saturated: `saturated_fraction >= SATURATED_SHARE`.
        activation: the activation name the rules used.
        n_outputs: outputs per unit that were scored.
    """

    live_fraction: np.ndarray
    saturated_fraction: np.ndarray
    max_output: np.ndarray
    mean_output: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
    activation: str
    n_outputs: int


def activation_name(layer) -> str:
    """The name of a layer's fused activation (`"linear"` when it has none)."""
    fn = getattr(layer, "activation", None)
    if fn is None:
        return "linear"
    return str(getattr(fn, "__name__", type(fn).__name__)).lower()


def unit_activity(outputs: np.ndarray, activation: str = "linear") -> UnitActivity:
    """Scores how each unit (last axis of `outputs`) responds to probe data.

    Example:

    ```python
    act = unit_activity(conv1_outputs, "relu")   # outputs (N, h, w, 16)
    np.flatnonzero(act.dead)
    ```

    Args:
        outputs: the layer's outputs on probe data, `(N, ..., units)`.
        activation: the layer's activation name (see the module docstring).
            Defaults to `"linear"`.

    Returns:
        A `UnitActivity`.

    Raises:
        ValueError: if `outputs` has fewer than 2 axes or no values.
    """
    y = np.asarray(outputs, np.float32)
    if y.ndim < 2 or y.size == 0:
        raise ValueError(f"outputs must be (N, ..., units) with values; got shape {y.shape}.")
    y = y.reshape(-1, y.shape[-1])
    y = np.where(np.isfinite(y), y, np.nan)
    name = activation.lower()
    if name in RELU_FAMILY:
        live = y > 0
    else:
        live = np.isfinite(y)
    if name == "relu6":
        sat = y >= 6.0
        live &= ~sat
    elif name == "sigmoid":
        sat = (y <= _SIGMOID_LO) | (y >= 1.0 - _SIGMOID_LO)
        live &= ~sat
    elif name == "hard_sigmoid":
        sat = (y <= 0.0) | (y >= 1.0)
        live &= ~sat
    elif name == "tanh":
        sat = np.abs(y) >= _TANH_HI
        live &= ~sat
    else:
        sat = np.zeros_like(live)
    with np.errstate(invalid="ignore"):
        ymax = np.nanmax(np.where(np.isnan(y), -np.inf, y), axis=0)
        ymin = np.nanmin(np.where(np.isnan(y), np.inf, y), axis=0)
        mean = np.nanmean(y, axis=0) if np.isfinite(y).any() else np.full(y.shape[1], np.nan)
    constant = ~(ymax - ymin > 1e-7 * (1.0 + np.abs(ymax)))
    live_frac = live.mean(axis=0)
    sat_frac = sat.mean(axis=0)
    dead = constant | (live_frac == 0) if name in RELU_FAMILY else constant
    return UnitActivity(
        live_fraction=live_frac.astype(np.float32),
        saturated_fraction=sat_frac.astype(np.float32),
        max_output=ymax.astype(np.float32),
        mean_output=np.asarray(mean, np.float32),
        dead=np.asarray(dead, bool),
        saturated=(sat_frac >= SATURATED_SHARE) & ~np.asarray(constant, bool),
        activation=name,
        n_outputs=int(y.shape[0]),
    )
