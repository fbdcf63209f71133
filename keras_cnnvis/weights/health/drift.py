"""How far each filter has moved: drift from initialisation and the update ratio between two
records, on the columns of the layer's `(fan_in, n_filters)` weight matrix.

- `drift = ||W_t - W_0|| / ||W_0||` per filter (relative change since initialisation).
- `update_ratio = ||W_t - W_prev|| / ||W_t||` per filter (relative change since the previous
  record, usually one epoch).
- `growth = ||W_t|| / ||W_0||` per filter (weights blowing up show as large growth).

A zero denominator gives 0 if nothing changed and inf otherwise.
"""

from __future__ import annotations

import numpy as np


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    return np.where(np.isfinite(num) & np.isfinite(den), out, np.nan).astype(np.float32)


def _check(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"The {what} weights have shape {b.shape}; expected the layer's weight matrix "
            f"shape {a.shape} (fan_in, n_filters)."
        )
    return a, b


def drift(current: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Per-filter `||W_t - W_0|| / ||W_0||` over `(fan_in, n_filters)` matrices.

    Raises:
        ValueError: if the shapes differ.
    """
    cur, ini = _check(current, initial, "initial")
    return _ratio(np.linalg.norm(cur - ini, axis=0), np.linalg.norm(ini, axis=0))


def update_ratio(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Per-filter `||W_t - W_prev|| / ||W_t||` over `(fan_in, n_filters)` matrices.

    Raises:
        ValueError: if the shapes differ.
    """
    cur, prev = _check(current, previous, "previous")
    return _ratio(np.linalg.norm(cur - prev, axis=0), np.linalg.norm(cur, axis=0))


def growth(current: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Per-filter `||W_t|| / ||W_0||` over `(fan_in, n_filters)` matrices.

    Raises:
        ValueError: if the shapes differ.
    """
    cur, ini = _check(current, initial, "initial")
    return _ratio(np.linalg.norm(cur, axis=0), np.linalg.norm(ini, axis=0))
