"""BatchClock: the contention of background records measured from training batches' times
(hand-computed estimates; the clock in a real fit with the model's twin)."""

import numpy as np
import pytest

from keras_cnnvis.callbacks.batch_clock import MIN_BUSY, MIN_IDLE, BatchClock
from keras_cnnvis.callbacks.budget import CONTENTION_FLOOR, TimeBudget


def run_epoch(clock, batches, start=0.0, busy_start=0.0):
    """Feeds `(seconds, worker busy seconds)` batches as the hooks would; returns the clock
    and the busy total at the end."""
    now, total = start, busy_start
    clock.start(now, total)
    for seconds, busy in batches:
        now, total = now + seconds, total + busy
        clock.batch(now, total)
    clock.end_epoch()
    return total


IDLE = [(0.10, 0.0), (0.12, 0.0), (0.08, 0.0), (0.10, 0.0), (0.10, 0.0)]  # mean 0.1


def test_contention_is_the_busy_batches_excess_per_worker_second_plus_two_errors():
    clock = BatchClock()
    run_epoch(clock, [(5.0, 4.0)] * 3)  # the first epoch (tracing) is left out
    assert clock.estimate is None and clock.busy == 0
    # The first batch (the data iterator's start) is left out however long; busy batches
    # 0.3 s with 0.5 s of the worker and 0.2 s with 0.25 s: excess 0.2 + 0.1 s.
    epoch = [(3.0, 1.0), *IDLE, (0.3, 0.5), (0.2, 0.25)]
    run_epoch(clock, epoch)
    assert clock.excess == pytest.approx(0.3) and clock.busy == pytest.approx(0.75)
    # Idle spread: variance 2e-4 (ddof 1); 2 busy batches, 5 idle: 2e-4 x (2 + 4 / 5).
    assert clock.variance == pytest.approx(2e-4 * 2.8)
    expected = (0.3 + 2 * np.sqrt(2e-4 * 2.8)) / 0.75
    assert clock.estimate == pytest.approx(expected)  # 0.463: 0.4 plus two errors
    # More epochs like it: the errors shrink (by sqrt 9) and the estimate nears 0.4.
    for _ in range(8):
        run_epoch(clock, epoch)
    assert clock.estimate == pytest.approx((2.7 + 2 * np.sqrt(9 * 5.6e-4)) / 6.75)


def test_a_batch_loses_at_most_the_workers_seconds_in_it():
    clock = BatchClock()
    run_epoch(clock, IDLE)
    # A 5-s batch with 0.5 s of the worker: something else slowed it; 0.5 s counted.
    run_epoch(clock, [(0.1, 0.0), *IDLE, (5.0, 0.5), (0.1, 0.5)])
    assert clock.excess == pytest.approx(0.5 + 0.0) and clock.busy == pytest.approx(1.0)
    # Faster than the idle mean: the gain is bounded the same way.
    clock = BatchClock()
    run_epoch(clock, IDLE)
    run_epoch(clock, [(0.1, 0.0), *IDLE, (0.05, 0.01), (0.1, 1.0)])
    assert clock.excess == pytest.approx(-0.01)
    assert clock.estimate == CONTENTION_FLOOR  # (-0.01 + 2 errors) / 1.01 < floor


def test_too_few_idle_batches_or_busy_seconds_give_no_estimate():
    clock = BatchClock()
    run_epoch(clock, IDLE)
    # Worker busy all epoch: no baseline, the epoch is not counted.
    run_epoch(clock, [(0.1, 0.0), *IDLE[: MIN_IDLE - 1], *[(0.3, 0.3)] * 10])
    assert clock.busy == 0 and clock.estimate is None
    # Counted, but under MIN_BUSY worker seconds: no estimate yet.
    run_epoch(clock, [(0.1, 0.0), *IDLE, (0.2, MIN_BUSY / 2)])
    assert clock.busy == pytest.approx(MIN_BUSY / 2) and clock.estimate is None
    run_epoch(clock, [(0.1, 0.0), *IDLE, (0.5, MIN_BUSY)])  # excess 0.1 + 0.4 s
    variance = 2 * 2e-4 * (1 + 1 / 5)
    assert clock.estimate == pytest.approx((0.5 + 2 * np.sqrt(variance)) / (1.5 * MIN_BUSY))
    # Every busy second lost, plus the errors: at most 1.
    clock = BatchClock()
    run_epoch(clock, IDLE)
    run_epoch(clock, [(0.1, 0.0), *IDLE, (1.1, 1.0)])
    assert clock.excess == pytest.approx(1.0) and clock.estimate == 1.0
    clock.reset()
    assert clock.epochs == 0 and clock.busy == 0 and clock.estimate is None


def test_the_budget_charges_at_the_measured_contention_when_there_is_one():
    budget = TimeBudget(0.1)
    epochs = [(12.0, 3.0)] + [(10.0 + 0.4 * b, b) for b in (1.0, 1.0, 4.0, 1.0, 2.0)]
    for seconds, busy in epochs:
        budget.train(seconds, busy)
    assert budget.contention == pytest.approx(0.4)  # the epochs' slope
    budget.measured = 0.25
    budget.charge(2.0, concurrent=True)
    assert budget.contention == 0.25 and budget.own_seconds == pytest.approx(0.5)
    budget.reset()
    assert budget.measured is None and budget.contention == 1.0


def test_cnnvis_callback_times_the_batches_of_a_fit_with_a_twin(tmp_path):
    from eventfiles import read_run
    from keras_cnnvis.callbacks import CNNVisCallback
    from robustness_models import LIGHT, shapes_data, tiny_cnn

    (x, y), (x_val, y_val, _) = shapes_data()
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "confusion"),
        options=LIGHT,
        on_error="raise",
    )
    seen = []
    clock_batch = cb._clock.batch
    cb._clock.batch = lambda now, total: (seen.append((now, total)), clock_batch(now, total))
    tiny_cnn().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert cb.twin_model is not None and cb._clock.epochs == 3
    batches = int(np.ceil(len(x) / 16))
    assert len(seen) == 3 * batches  # every training batch, timed
    totals = [total for _, total in seen]
    assert totals == sorted(totals) and totals[0] >= 0  # the worker's running total
    assert cb.budget.measured == cb._clock.estimate
    assert read_run(str(tmp_path / "cnnvis"))["json/confusion/matrix"]
