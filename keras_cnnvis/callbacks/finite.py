"""Whether a model's weights are all finite: the check behind skipping records of a diverged
run, once per record set when the monitors share a `FiniteWeights`."""

from __future__ import annotations

import keras


def weights_finite(model) -> bool:
    """Whether every floating-point weight of `model` is finite (no NaN, no inf)."""
    for variable in getattr(model, "weights", ()):
        if "float" in str(variable.dtype) and not bool(keras.ops.all(keras.ops.isfinite(variable))):
            return False
    return True


class FiniteWeights:
    """`weights_finite` once per record set, the answer shared by the monitors of the set
    (instead of each monitor reading every weight: 13 reads per record set for
    `CNNVisCallback`'s monitors).

    Example:

    ```python
    finite = FiniteWeights()
    monitor.finite_weights = finite  # for each monitor
    finite.invalidate()              # the weights changed (before each record set)
    ```
    """

    def __init__(self):
        self._model = None
        self._value: bool | None = None
        self.checks = 0  # times the weights were read

    def invalidate(self) -> None:
        """Forgets the answer: the weights may have changed."""
        self._value = None

    def __call__(self, model) -> bool:
        if self._value is None or self._model is not model:
            self._model, self._value = model, weights_finite(model)
            self.checks += 1
        return self._value


__all__ = ["FiniteWeights", "weights_finite"]
