"""What background records cost training, measured from the training batches' times.

A record on the model's twin runs in the background worker beside training and slows it by
taking CPU cores (or the accelerator) from it. Comparing epochs is a weak measurement: an
epoch is one noisy point and most hold records. Batches are many: within each epoch the
batches during which the worker was idle give the batch time without records, and the
batches during which it ran give how much longer training took per second it ran.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.callbacks.budget import CONTENTION_FLOOR

MIN_IDLE = 5
"""Idle batches an epoch needs for its baseline (else its busy batches are not counted)."""

MIN_BUSY = 0.5
"""Busy seconds (over batches after the first epoch) an estimate needs."""


class BatchClock:
    """Training seconds lost per second of background records, from batch times.

    Each epoch after the first (which traces the training step), a batch's time (but the
    first's, which starts the data iterator) is compared with the mean time of that epoch's
    batches during which the worker was idle; the excess of the batches during which it
    ran (at most the worker's seconds in each: a batch cannot lose more than that to it),
    summed over the fit and divided by the worker's seconds within them, is the contention,
    reported with two standard errors added (the idle batches' spread), within
    `[CONTENTION_FLOOR, 1]`.

    Example:

    ```python
    clock = BatchClock()
    for epoch in range(3):
        clock.start(now(), worker.busy_total())
        for batch in batches:
            train(batch)
            clock.batch(now(), worker.busy_total())
        clock.end_epoch()
    clock.estimate  # e.g. 0.35, or None before enough busy batches
    ```
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Starts a new fit."""
        self.epochs = 0
        self.excess = 0.0  # seconds busy batches took beyond their epoch's idle mean
        self.busy = 0.0  # worker seconds within those batches
        self.variance = 0.0  # of `excess`, from the idle batches' spread
        self._batches: list[tuple[float, float]] = []
        self._last: tuple[float, float] | None = None

    def start(self, now: float, busy_total: float) -> None:
        """An epoch starts at `now` (`time.perf_counter`) with the worker's busy total."""
        self._batches, self._last = [], (now, busy_total)

    def batch(self, now: float, busy_total: float) -> None:
        """A batch ended at `now`; `busy_total` is the worker's busy total then."""
        if self._last is None:  # (no epoch start seen: the first batch is the mark)
            self._last = (now, busy_total)
            return
        then, total = self._last
        self._batches.append((now - then, max(0.0, busy_total - total)))
        self._last = (now, busy_total)

    def end_epoch(self) -> None:
        """Adds the epoch's batches to the estimate."""
        batches, self._batches, self._last = self._batches, [], None
        self.epochs += 1
        if self.epochs == 1 or len(batches) < 2:
            return
        # The first batch of an epoch also starts its data iterator (a shuffle): left out.
        seconds, busy = np.asarray(batches[1:], np.float64).T
        idle = seconds[busy <= 0]
        ran = busy > 0
        if len(idle) < MIN_IDLE or not ran.any():
            return
        mean, spread = float(idle.mean()), float(idle.var(ddof=1))
        n = int(ran.sum())
        # Training cannot lose more time in a batch than the worker ran in it: a longer
        # batch was slowed by something else (another process, a pause).
        excess = np.clip(seconds[ran] - mean, -busy[ran], busy[ran])
        self.excess += float(np.sum(excess))
        self.busy += float(np.sum(busy[ran]))
        # n batch times and the idle mean subtracted n times, each with the idle spread.
        self.variance += spread * (n + n * n / len(idle))

    @property
    def estimate(self) -> float | None:
        """The contention with two standard errors added, or None before `MIN_BUSY`
        worker seconds within counted batches."""
        if self.busy < MIN_BUSY:
            return None
        value = (self.excess + 2.0 * np.sqrt(self.variance)) / self.busy
        return float(np.clip(value, CONTENTION_FLOOR, 1.0))
