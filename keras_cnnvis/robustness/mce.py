"""The corruption error of Hendrycks & Dietterich (2019): CE per corruption, mCE and
relative mCE of a model against a baseline (another model, or an earlier epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from keras_cnnvis.robustness.measures import CorruptionAccuracy


@dataclass
class CorruptionError:
    """Corruption errors against a baseline (Hendrycks & Dietterich 2019, section 3).

    As ratios (1.0: as many errors as the baseline), not percentages.

    Attributes:
        corruptions: names, one per entry of `ce` (None when given unnamed arrays).
        ce: `CE_c = sum_s E_s,c / sum_s E^base_s,c` per corruption.
        mce: the mean of `ce`.
        relative_ce: `sum_s (E_s,c - E_clean) / sum_s (E^base_s,c - E^base_clean)` per
            corruption (None without clean errors).
        relative_mce: the mean of `relative_ce` (None without clean errors).
        severities: the severities summed over (None when given plain arrays).
    """

    corruptions: tuple[str, ...] | None
    ce: np.ndarray
    mce: float
    relative_ce: np.ndarray | None = None
    relative_mce: float | None = None
    severities: tuple[int, ...] | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        names = self.corruptions or tuple(str(i) for i in range(len(self.ce)))
        out: dict[str, Any] = {"mce": self.mce, "ce": dict(zip(names, map(float, self.ce)))}
        if self.relative_ce is not None:
            out["relative_mce"] = self.relative_mce
            out["relative_ce"] = dict(zip(names, map(float, self.relative_ce)))
        return out


def _error_table(errors, what: str):
    """(table, names, severities, clean error) from a CorruptionAccuracy, a mapping of
    name -> errors per severity, or an array (corruptions, severities)."""
    if isinstance(errors, CorruptionAccuracy):
        return errors.errors, errors.corruptions, errors.severities, errors.clean_error
    if isinstance(errors, Mapping):
        names = tuple(errors)
        rows = [np.atleast_1d(np.asarray(errors[n], np.float64)) for n in names]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError(f"{what}: give every corruption the same number of severities.")
        return np.stack(rows), names, None, None
    table = np.asarray(errors, np.float64)
    if table.ndim == 1:
        table = table[:, None]
    if table.ndim != 2 or table.size == 0:
        raise ValueError(
            f"{what} must be a CorruptionAccuracy, a dict of errors per severity, or an "
            f"array (corruptions, severities); got shape {table.shape}."
        )
    return table, None, None, None


def corruption_error(
    errors: Any,
    baseline_errors: Any,
    clean_error: float | None = None,
    baseline_clean_error: float | None = None,
) -> CorruptionError:
    """Corruption errors of a model against a baseline: CE, mCE and relative mCE.

    For each corruption `c`, `CE_c = sum_s E_s,c / sum_s E^base_s,c` over the severities
    `s`; the relative CE subtracts each model's clean error first,
    `sum_s (E_s,c - E_clean) / sum_s (E^base_s,c - E^base_clean)`; mCE and relative mCE
    average them over the corruptions (the paper's figures average the 15 `BENCHMARK`
    ones and use AlexNet as the baseline; here any model, or an earlier epoch). A
    corruption whose baseline denominator is 0 gets NaN (and so does the mean).

    Example:

    ```python
    base = corruption_accuracy(baseline_model, x, y)
    ours = corruption_accuracy(model, x, y)
    corruption_error(ours, base).mce   # < 1: fewer errors than the baseline
    ```

    Args:
        errors: the model's errors: a `CorruptionAccuracy`, a dict `{name: [error per
            severity]}` or an array `(corruptions, severities)` of error rates.
        baseline_errors: the baseline's, in the same form.
        clean_error: the model's clean error (taken from a `CorruptionAccuracy`).
            Defaults to None.
        baseline_clean_error: the baseline's clean error. Defaults to None.

    Returns:
        A `CorruptionError` (`relative_ce` and `relative_mce` None without clean errors).

    Raises:
        ValueError: if the two tables do not cover the same corruptions and severities.
    """
    table, names, levels, clean = _error_table(errors, "errors")
    base, base_names, base_levels, base_clean = _error_table(baseline_errors, "baseline_errors")
    clean = clean if clean_error is None else float(clean_error)
    base_clean = base_clean if baseline_clean_error is None else float(baseline_clean_error)
    if names is not None and base_names is not None:
        missing = [n for n in names if n not in base_names]
        if missing:
            raise ValueError(f"The baseline has no errors for {', '.join(missing)}.")
        base = base[[base_names.index(n) for n in names]]
    if levels is not None and base_levels is not None and tuple(levels) != tuple(base_levels):
        raise ValueError(
            f"The tables cover different severities ({list(levels)} and {list(base_levels)})."
        )
    if table.shape != base.shape:
        raise ValueError(
            f"errors {table.shape} and baseline_errors {base.shape} must both be "
            "(corruptions, severities)."
        )
    ce = _ratio(table.sum(axis=1), base.sum(axis=1))
    relative = relative_mce = None
    if clean is not None and base_clean is not None:
        relative = _ratio((table - clean).sum(axis=1), (base - base_clean).sum(axis=1))
        relative_mce = float(relative.mean())
    return CorruptionError(
        names or base_names, ce, float(ce.mean()), relative, relative_mce, levels or base_levels
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


__all__ = ["CorruptionError", "corruption_error"]
