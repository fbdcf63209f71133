"""The time budget of `CNNVisCallback`: what its records cost the fit stays within a share of
training time.

Training time is the wall time of the epochs (batches, validation and the other callbacks).
The callback's own time is what its records cost the fit: the training thread's part of them
(without a twin: the model-dependent part and any wait for the background worker; with one:
the copy of the weights) in full, and the records the twin computes in the background worker.
Those run beside training until the last epoch ends and cost the fit only what training loses
to them (on two CPU cores about half their wall time, on a GPU machine little): they are
charged at the contention measured in this fit (training seconds lost per second of
background records: `measured` from the training batches' times by `batch_clock.BatchClock`,
else `contention` from the epochs' times against the worker's busy seconds in each), and in
full until a measurement tells and after the last epoch. Setup (building and
checking the monitors) and the records of the state before training are measured, not
charged: nothing has trained yet to pay for them. Every later record is charged, a monitor's
first (which traces its compiled functions) included.

A record during training runs while the callback's time so far is within `share` x the
training time so far (an overshoot is paid back by skipping later records); a final record
after the last epoch, when nothing can be paid back, only if its expected cost fits. When the
number of epochs is known, the final records of the trained model come first: a record during
training (but a monitor's first) also needs room, in the allowance projected to the end of the
fit, for itself and the final records of the expensive monitors (`reserve`).
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


CONTENTION_FLOOR = 0.1
"""The least share of a concurrent record's seconds charged, whatever the measurement."""

MIN_EPOCHS = 4
"""Epochs after the first a contention estimate needs (with busy seconds that differ)."""


def contention(epochs: Sequence[tuple[float, float]]) -> float:
    """Training seconds lost per second of background records, measured over a fit.

    `epochs` holds `(training seconds, worker busy seconds)` per epoch; the first is left
    out (it traces the training step). The least-squares slope of epoch time against busy
    seconds, `epoch = base + c x busy`, plus two standard errors (a cautious end), within
    `[CONTENTION_FLOOR, 1]`; 1 (everything charged) with fewer than `MIN_EPOCHS` epochs
    after the first or busy seconds that do not vary.

    Example:

    ```python
    # 10 s epochs, each busy second of the worker costs training 0.4 s:
    contention([(12.0, 3.0)] + [(10.0 + 0.4 * b, b) for b in (1.0, 1.0, 4.0, 1.0, 2.0)])
    # 0.4
    contention([(12.0, 3.0), (10.4, 1.0), (11.6, 4.0)])  # 1.0: too few epochs
    ```

    Args:
        epochs: `(training seconds, busy seconds)` of every epoch of the fit, in order.

    Returns:
        The share of concurrent seconds to charge.
    """
    points = np.asarray(list(epochs)[1:], np.float64).reshape(-1, 2)
    if len(points) < MIN_EPOCHS:
        return 1.0
    y, x = points[:, 0], points[:, 1]
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= 1e-12:
        return 1.0
    slope = float(dx @ (y - y.mean())) / sxx
    residual = y - y.mean() - slope * dx
    error = np.sqrt(float(residual @ residual) / (len(points) - 2) / sxx)
    return float(np.clip(slope + 2.0 * error, CONTENTION_FLOOR, 1.0))


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
        self.concurrent = False  # whether records run beside training (set with a twin)
        self.reset()

    def reset(self) -> None:
        """Starts a new fit: the clocks back to zero, the number of epochs unknown."""
        self.train_seconds = self.setup_seconds = 0.0
        self.full_seconds = 0.0  # own seconds charged in full
        self.concurrent_seconds = 0.0  # background seconds beside training
        self.epochs: list[tuple[float, float]] = []  # (training, busy) seconds per epoch
        self.measured: float | None = None  # contention from batch times (`BatchClock`)
        self.epochs_trained, self.epochs_expected = 0, None

    @property
    def contention(self) -> float:
        """The share of concurrent seconds charged: `measured` from the batches' times
        when set, else `contention` of this fit's epochs."""
        return contention(self.epochs) if self.measured is None else self.measured

    @property
    def own_seconds(self) -> float:
        """The callback's own time so far: full charges plus concurrent seconds at the
        measured contention."""
        return self.full_seconds + self.contention * self.concurrent_seconds

    def expect(self, epochs: int | None) -> None:
        """Sets how many epochs this fit trains in all (None: unknown)."""
        self.epochs_expected = None if epochs is None or epochs < 1 else int(epochs)

    def one_time(self, seconds: float) -> None:
        """Adds time spent before training (measured, not charged)."""
        self.setup_seconds += max(0.0, float(seconds))

    def train(self, seconds: float, busy: float = 0.0) -> None:
        """Adds training time (an epoch's wall time without the callback's own work) and
        the seconds the background worker computed records during it."""
        self.train_seconds += max(0.0, float(seconds))
        self.epochs.append((max(0.0, float(seconds)), max(0.0, float(busy))))
        self.epochs_trained += 1

    @property
    def projected_allowance(self) -> float | None:
        """The allowance at the end of the fit, from the epochs so far (None when the
        number of epochs is unknown or none has trained yet)."""
        if self.share is None or self.epochs_expected is None or self.epochs_trained < 1:
            return None
        per_epoch = self.train_seconds / self.epochs_trained
        return self.share * per_epoch * max(self.epochs_expected, self.epochs_trained)

    def charge(self, seconds: float, concurrent: bool = False) -> None:
        """Adds the callback's own time: in full, or (`concurrent`) background seconds that
        ran beside training, charged at the measured `contention`."""
        if concurrent:
            self.concurrent_seconds += max(0.0, float(seconds))
        else:
            self.full_seconds += max(0.0, float(seconds))

    @property
    def beside_training(self) -> bool:
        """Whether a record due now runs beside training: records run in the background
        (`concurrent`) and epochs are still to come (unknown counts as to come)."""
        expected = self.epochs_expected
        return self.concurrent and (expected is None or self.epochs_trained < expected)

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
        reserve: float = 0.0,
    ) -> bool:
        """Whether a due record may run.

        Before training (`phase="initial"`) only cheap monitors record: nothing has
        trained yet to pay for it. During training (`"epoch"`) a record runs while the
        callback is within its budget; an overshoot is paid back by skipping later
        records. When the number of epochs is known (`expect`), a record that is not the
        monitor's first (whose cost is unknown) must also leave room for the final records:
        its expected cost (at the measured `contention` when it runs beside training) plus
        `reserve` must fit in `projected_allowance`. After the last epoch (`"final"`)
        nothing can be paid back: the record's expected cost (`estimate_cost(seconds,
        others)`), or for a monitor that never ran the cautious `guess_cost(others)`, must
        fit in what is left.

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
            reserve: the expected seconds of the final records still to come (see
                `final_reserve`). Defaults to 0.

        Returns:
            True if the record may run (always, without a budget).
        """
        if self.share is None:
            return True
        if phase == "initial":
            return bool(cheap)
        others = [list(s) for s in others]
        cost = estimate_cost(seconds, others)
        if phase == "epoch":
            projected = self.projected_allowance
            # (A first record's cost is unknown: it is charged after, not checked here.)
            if projected is not None and reserve > 0 and cost is not None:
                share = self.contention if self.beside_training else 1.0
                if self.own_seconds + share * cost + reserve > projected:
                    return False
            return self.allows(0.0)
        return self.allows(guess_cost(others) if cost is None else cost)

    @property
    def used(self) -> float:
        """The callback's own time over training time so far (NaN before any training)."""
        return self.own_seconds / self.train_seconds if self.train_seconds > 0 else float("nan")


def final_reserve(entries: Iterable[tuple], asking: object, final_step: int | None) -> float:
    """The expected seconds of the expensive monitors' final records still to come.

    Each entry is `(monitor, cheap)`. An expensive monitor counts when it records at the end
    (`log_at_end`), is active, has run before (else its cost is unknown) and has not yet
    written the step `final_step` (the last epoch's); the `asking` monitor's own final
    counts unless the record it asks for is that final one.

    Example:

    ```python
    final_reserve(zip(callback.monitors, cheap_flags), monitor, callback.params["epochs"])
    ```

    Args:
        entries: `(monitor, cheap)` pairs of every monitor.
        asking: the monitor whose record is being gated.
        final_step: the step of the last epoch, or None when unknown (no reserve).

    Returns:
        The seconds to keep for the final records (0 without a known last step).
    """
    if final_step is None:
        return 0.0
    entries = list(entries)
    seconds = [list(m.log_seconds) for m, _ in entries]
    total = 0.0
    for monitor, cheap in entries:
        if cheap or not monitor.log_at_end or not monitor.active or not monitor.log_seconds:
            continue
        done = monitor._last_logged == final_step
        if monitor is asking:
            done = done or monitor._last_completed == final_step  # asking for the final
        if not done:
            total += estimate_cost(monitor.log_seconds, seconds) or 0.0
    return total
