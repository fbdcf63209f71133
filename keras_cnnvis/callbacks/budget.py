"""The time budget of `CNNVisCallback`: its own time stays within a share of training time.

Training time is the wall time of the epochs (batches, validation and the other callbacks);
the callback's own time is the time of its records during training: the whole record on the
model's twin in the background worker (it shares the machine with training), or, without a
twin, the training thread's part of each record (the model-dependent part and any wait for
the background worker). One-time costs
(building and checking the monitors before the first epoch, and each monitor's first record,
which traces its compiled functions) are measured but not charged, like the tracing of the
training step itself. A record during training runs while the callback's time so far is within
`share` x the training time so far (an overshoot is paid back by skipping later records); a
final record after the last epoch, when nothing can be paid back, only if its estimated cost
fits.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def estimate_cost(seconds: Sequence[float], others: Iterable[Sequence[float]] = ()) -> float | None:
    """The expected seconds of a monitor's next record, or None if it never ran.

    The median of its calls after the first (the first one traces and warms caches). A
    monitor that ran once: its call, scaled by how much cheaper the later records of the
    monitors that ran more often were than their first (`others`; the median ratio, at
    most 1), or its call as it is when no other monitor ran twice.

    Example:

    ```python
    estimate_cost([0.9, 0.2, 0.3])  # 0.25
    estimate_cost([0.8], others=[[1.0, 0.2, 0.3]])  # 0.8 x 0.25 = 0.2
    ```

    Args:
        seconds: wall times of the monitor's earlier records.
        others: wall times of every monitor's records. Defaults to ().

    Returns:
        The estimate in seconds, or None without any earlier record.
    """
    seconds = list(seconds)
    if len(seconds) > 1:
        return float(np.median(seconds[1:]))
    if not seconds:
        return None
    ratios = [np.median(s[1:]) / s[0] for s in map(list, others) if len(s) > 1 and s[0] > 0]
    return float(seconds[0] * (min(1.0, np.median(ratios)) if ratios else 1.0))


def guess_cost(calls: Iterable[Sequence[float]]) -> float:
    """A cautious guess for a monitor that never ran: twice the slowest call of any
    monitor so far (0 when nothing ran yet).

    Example:

    ```python
    guess_cost([[0.1, 0.05], [], [0.7, 0.2]])  # 1.4
    ```

    Args:
        calls: wall times of every monitor's records.

    Returns:
        The guess in seconds.
    """
    slowest = [max(s) for s in calls if len(s)]
    return 2.0 * max(slowest) if slowest else 0.0


class TimeBudget:
    """Tracks training time and the callback's own time against `share`.

    Example:

    ```python
    budget = TimeBudget(0.15)
    budget.charge(0.2)                 # setup
    budget.train(3.0)                  # one epoch of training
    budget.allows(0.3)                 # 0.2 + 0.3 <= 0.15 * 3.0 -> True
    ```

    Args:
        share: the largest share of training time the callback may take, > 0; `None`
            turns the budget off (everything is allowed).

    Raises:
        ValueError: if `share` is not a positive number or None.
    """

    def __init__(self, share: float | None):
        if share is not None and (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or not np.isfinite(share)
            or share <= 0
        ):
            raise ValueError(
                f"budget must be a positive share of training time (e.g. 0.15 for 15%) or "
                f"None for no limit; got {share!r}."
            )
        self.share = None if share is None else float(share)
        self.train_seconds = 0.0
        self.own_seconds = 0.0
        self.setup_seconds = 0.0

    def reset(self) -> None:
        """Starts a new fit: the clocks back to zero."""
        self.train_seconds = self.own_seconds = self.setup_seconds = 0.0

    def one_time(self, seconds: float) -> None:
        """Adds time spent before training (measured, not charged)."""
        self.setup_seconds += max(0.0, float(seconds))

    def train(self, seconds: float) -> None:
        """Adds training time (an epoch's wall time without the callback's own work)."""
        self.train_seconds += max(0.0, float(seconds))

    def charge(self, seconds: float) -> None:
        """Adds the callback's own time."""
        self.own_seconds += max(0.0, float(seconds))

    @property
    def allowance(self) -> float:
        """Seconds the callback may have spent by now (infinite without a budget)."""
        return float("inf") if self.share is None else self.share * self.train_seconds

    def allows(self, cost: float) -> bool:
        """Whether a record expected to take `cost` seconds fits in the budget now."""
        return self.own_seconds + max(0.0, float(cost)) <= self.allowance

    def admits(
        self,
        phase: str,
        cheap: bool,
        seconds: Sequence[float],
        others: Iterable[Sequence[float]] = (),
    ) -> bool:
        """Whether a due record may run.

        Before training (`phase="initial"`) only cheap monitors record: nothing has
        trained yet to pay for it. During training (`"epoch"`) a record runs while the
        callback is within its budget; an overshoot is paid back by skipping later
        records. After the last epoch (`"final"`) nothing can be paid back: the record's
        expected cost (`estimate_cost(seconds, others)`) must fit in what is left; for a
        monitor that never ran, whose first record is a one-time cost (it traces), the
        cautious `guess_cost(others)` must fit in the whole allowance.

        Example:

        ```python
        budget = TimeBudget(0.1)
        budget.train(10.0)
        budget.admits("epoch", cheap=False, seconds=[5.0])  # True: nothing spent yet
        budget.admits("final", cheap=False, seconds=[5.0])  # False: 5 s > 1 s allowed
        ```

        Args:
            phase: `"initial"`, `"epoch"` or `"final"`.
            cheap: whether the monitor is a cheap one.
            seconds: the monitor's earlier record times.
            others: every monitor's record times (for the guess).

        Returns:
            True if the record may run (always, without a budget).
        """
        if self.share is None:
            return True
        if phase == "initial":
            return bool(cheap)
        if phase == "epoch":
            return self.allows(0.0)
        others = [list(s) for s in others]
        cost = estimate_cost(seconds, others)
        if cost is None:
            return guess_cost(others) <= self.allowance
        return self.allows(cost)

    @property
    def used(self) -> float:
        """The callback's own time over training time so far (NaN before any training)."""
        return self.own_seconds / self.train_seconds if self.train_seconds > 0 else float("nan")
