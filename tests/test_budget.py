"""CNNVisCallback's time budget: the cost estimate, the arithmetic of the gate, and real fits
in which the budget never binds, always binds, or binds on a slow monitor.
"""

import time
import warnings

import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.budget import (
    CONTENTION_FLOOR,
    TimeBudget,
    contention,
    estimate_cost,
    guess_cost,
)
from keras_cnnvis.callbacks.cnnvis import CHEAP, EXPENSIVE
from robustness_models import CLASSES, CONVS, LIGHT, shapes_data, tiny_cnn


@pytest.fixture(scope="module")
def data():
    return shapes_data()


def steps(run, tag):
    return [r.step for r in run[tag]]


def test_estimate_skips_the_tracing_call_and_guesses_for_new_monitors():
    assert estimate_cost([0.9, 0.2, 0.4, 0.3]) == pytest.approx(0.3)  # median of 2nd..
    assert estimate_cost([0.9]) == pytest.approx(0.9)  # one call: that call
    # ... scaled by how much cheaper the others' later records were than their first
    others = [[1.0, 0.2, 0.3], [0.5, 0.5], [0.4]]  # ratios 0.25 and 1.0: median 0.625
    assert estimate_cost([0.8], others) == pytest.approx(0.8 * 0.625)
    assert estimate_cost([0.8], [[0.1, 0.5]]) == pytest.approx(0.8)  # never more than 1x
    assert estimate_cost([]) is None
    # Never ran: twice the slowest call of any monitor so far; nothing ran: free.
    assert guess_cost([[0.1, 0.05], [], [0.7, 0.2]]) == pytest.approx(1.4)
    assert guess_cost([[], []]) == 0.0


def test_time_budget_arithmetic():
    budget = TimeBudget(0.15)
    budget.charge(0.2)
    assert not budget.allows(0.0)  # nothing trained yet: no allowance at all
    assert np.isnan(budget.used)
    budget.train(3.0)  # allowance 0.45
    assert budget.allows(0.249) and not budget.allows(0.251)
    budget.charge(0.25)
    assert budget.used == pytest.approx(0.45 / 3.0)
    budget.one_time(5.0)  # measured, not charged
    assert budget.setup_seconds == 5.0 and budget.used == pytest.approx(0.45 / 3.0)
    assert budget.allowance == pytest.approx(0.45) and not budget.allows(0.01)
    budget.reset()
    assert budget.own_seconds == budget.train_seconds == budget.setup_seconds == 0.0
    unlimited = TimeBudget(None)
    assert unlimited.allows(1e9) and unlimited.allowance == float("inf")


@pytest.mark.parametrize("share", [0, -0.1, float("nan"), float("inf"), True, "15%"])
def test_budget_must_be_a_positive_share(share):
    assert CNNVisCallback("unused").budget.share == 0.1  # the default: 10%
    with pytest.raises(ValueError, match=r"budget must be a positive share .* or None"):
        CNNVisCallback("unused", budget=share)


def gated(tmp_path, data, budget: float, epochs: int):
    """A CNNVisCallback set up for `epochs` epochs of the tiny CNN, its monitors' record
    times cleared (the initial records of `on_train_begin` are not kept); returns it and
    its monitors by name, for the tests to set the clocks by hand."""
    _, (x_val, y_val, _) = data
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        options=LIGHT,
        on_error="raise",
        budget=budget,
    )
    cb.set_model(tiny_cnn())
    cb.set_params({"epochs": epochs, "steps": 2, "verbose": 0})
    cb.on_train_begin()
    for monitor in cb.monitors:
        monitor.log_seconds = []
    return cb, dict(zip(cb.names, cb.monitors))


def test_gate_runs_a_record_only_if_its_expected_cost_fits(tmp_path, data):
    cb, monitors = gated(tmp_path, data, budget=0.15, epochs=2)
    # Before training only the cheap monitors record, whatever the clocks say.
    assert [cb._gate(m, "initial") for m in cb.monitors] == [n in CHEAP for n in cb.names]
    cb.budget.reset()
    cb.budget.train(10.0)  # 15% -> 1.5 s allowed so far
    cb.budget.charge(1.0)
    monitors["filters"].log_seconds = [0.6, 0.3, 0.5]  # estimate 0.4: 1.4 <= 1.5
    # One (first) record of 0.8 s, scaled as the filters' later records were (0.4 / 0.6):
    # estimate 0.53, and 1.53 > 1.5.
    monitors["confusion"].log_seconds = [0.8]
    assert cb._gate(monitors["filters"], "final")
    assert not cb._gate(monitors["confusion"], "final")
    # During training a record runs while the callback is within budget (1.0 <= 1.5),
    # whatever it costs: an overshoot is paid back by skipping later records.
    assert cb._gate(monitors["confusion"], "epoch")
    # A monitor that never ran: during training any slack will do (1.0 <= 1.5) ...
    assert cb._gate(monitors["saliency"], "epoch")
    # ... but its final record needs a cautious guess, 2 x 0.8 (the slowest call so far),
    # to fit in what is left (1.0 + 1.6 > 1.5).
    assert not cb._gate(monitors["saliency"], "final")
    cb.budget.train(10.0)  # allowance 3.0: 1.0 + 1.6 fits, 1.0 + 0.53 fits
    assert cb._gate(monitors["saliency"], "final")
    assert cb._gate(monitors["confusion"], "final")
    cb.budget.charge(2.5)  # over the allowance: every record waits
    assert not cb._gate(monitors["saliency"], "epoch")
    assert not cb._gate(monitors["filters"], "epoch")
    assert not cb._gate(monitors["confusion"], "final")
    assert cb.skipped == {"confusion": 2, "saliency": 2, "filters": 1}
    cb.on_train_end()


def test_a_budget_that_never_binds_keeps_every_schedule_but_the_expensive_initial_records(
    tmp_path, data
):
    (x, y), (x_val, y_val, m_val) = data
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        masks=m_val,
        class_names=CLASSES,
        n_probes=5,
        expensive_every=2,
        options=LIGHT,
        on_error="raise",
        budget=1e9,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing skipped: no warning
        tiny_cnn().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert cb.skipped == {}
    run = read_run(str(tmp_path / "cnnvis"))
    for layer in CONVS:
        assert steps(run, f"filters/{layer}") == [0, 1, 2, 3]
        assert steps(run, f"health/{layer}") == [0, 1, 2, 3]
        assert steps(run, f"patches/{layer}") == [2, 3]  # no pre-training record
    assert steps(run, "attribution/grad_cam") == [0, 1, 2, 3]
    assert steps(run, "attribution/occlusion") == [2, 3]
    assert steps(run, "embedding/pca") == [2, 3]
    # The share used, logged after every epoch, is what the budget measured.
    overhead = run["cnnvis/overhead"]
    assert [r.step for r in overhead] == [1, 2, 3]
    assert all(r.value > 0 for r in overhead)


def test_a_budget_that_always_binds_keeps_the_initial_state_and_says_what_it_skipped(
    tmp_path, data
):
    (x, y), (x_val, y_val, _) = data
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        expensive_every=2,
        options=LIGHT,
        on_error="raise",
        budget=1e-9,
    )
    # Setup and the initial records are not charged: at the end of epoch 1 the callback
    # owes nothing, so the first cheap monitor (filters) records and from then on the
    # callback is over its budget. Cheap: epochs 1-3 each (filters: 2 and 3; the record of
    # epoch 3, asked again at the end, is one record skipped); expensive: epoch 2 and the
    # last (robustness: the last).
    skipped = 3 * len(CHEAP) - 1 + 2 * len(EXPENSIVE) - 1  # robustness: not due at 2
    with pytest.warns(
        UserWarning, match=rf"CNNVisCallback skipped {skipped} records .*budget=1e-09"
    ):
        tiny_cnn().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert cb.names[0] == "filters"
    assert cb.skipped == {
        **{n: 3 for n in CHEAP},
        "filters": 2,
        **{n: 2 for n in EXPENSIVE},
        "robustness": 1,  # every 2 x expensive_every epochs: only its final record was due
    }
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "filters/conv_a") == [0, 1] and steps(run, "health/conv_b") == [0]
    assert steps(run, "json/confusion/matrix") == [0]
    assert not [t for t in run if t.startswith(("patches", "embedding", "neighbors"))]
    assert cb.budget.used > 1e-9  # the filters record of epoch 1 was paid
    assert cb.budget.setup_seconds > cb.budget.own_seconds  # setup, initial: not charged


def test_custom_loop_without_epoch_begin_still_counts_training_time(tmp_path, data):
    (x, y), _ = data
    model = tiny_cnn()
    cb = CNNVisCallback(str(tmp_path), include=("filters",), on_error="raise", budget=1e9)
    cb.set_model(model)
    cb.set_params({"epochs": 2, "steps": 4, "verbose": 0})
    cb.on_train_begin()
    for epoch in range(2):  # a hand-written loop that never calls on_epoch_begin
        for _ in range(4):
            model.train_on_batch(x[:16], y[:16])
        cb.on_epoch_end(epoch)
    cb.on_train_end()
    assert cb.budget.train_seconds > 0 and cb.skipped == {}
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "filters/conv_a") == [1, 2]  # no on_epoch_begin: no initial record


def test_admits_by_phase():
    budget = TimeBudget(0.1)
    assert budget.admits("initial", True, []) and not budget.admits("initial", False, [])
    budget.train(10.0)  # 1 s allowed
    assert budget.admits("epoch", False, [5.0])  # within budget: runs, overshoot paid later
    assert not budget.admits("final", False, [9.0, 5.0])  # expected 5 s > 1 s
    assert budget.admits("final", False, [9.0, 0.5, 0.7])  # expected 0.6 s (median after 1st)
    assert not budget.admits("final", False, [], others=[[0.2], [0.6]])  # guess 1.2 s
    assert budget.admits("final", False, [], others=[[0.2], [0.4]])  # guess 0.8 s
    assert budget.admits("final", False, [0.8], others=[[1.0, 0.2]])  # 0.8 x 0.2 fits
    budget.charge(0.9)
    assert not budget.admits("final", False, [0.8], others=[[1.0, 0.2]])  # 0.16 > 0.1 left
    budget.charge(0.6)
    assert not budget.admits("epoch", True, [0.0])  # in debt: every record waits
    # In debt, a never-run monitor's guess (0.8 s) no longer fits what is left either.
    assert not budget.admits("final", False, [], others=[[0.2], [0.4]])
    assert TimeBudget(None).admits("initial", False, [])  # no budget: everything runs


def test_projected_allowance_keeps_room_for_the_final_records():
    budget = TimeBudget(0.1)
    assert budget.projected_allowance is None  # nothing trained, epochs unknown
    budget.expect(4)
    budget.train(10.0)  # 1 s allowed now, 4 s projected at the end of 4 epochs
    assert budget.projected_allowance == pytest.approx(4.0)
    budget.charge(0.5)
    # 0.5 spent + 0.6 for this record + 2.8 kept for the finals = 3.9 <= 4: runs ...
    assert budget.admits("epoch", True, [0.9, 0.6], reserve=2.8)
    # ... 0.5 + 0.6 + 3.0 > 4: waits, though the callback is within budget now
    assert not budget.admits("epoch", True, [0.9, 0.6], reserve=3.0)
    assert budget.admits("epoch", True, [0.9, 0.6])  # no reserve: the old rule
    assert budget.admits("epoch", False, [], reserve=3.6)  # a first record: one-time
    budget.expect(None)  # epochs unknown (a custom loop): no projection
    assert budget.admits("epoch", True, [0.9, 0.6], reserve=3.0)
    budget.expect(4)
    budget.train(10.0)
    budget.train(10.0)
    budget.train(10.0)  # more epochs than expected: the projection is what trained
    assert budget.epochs_trained == 4 and budget.projected_allowance == pytest.approx(4.0)
    budget.reset()
    assert budget.epochs_trained == 0 and budget.epochs_expected is None


def test_gate_keeps_room_for_the_expensive_monitors_final_records(tmp_path, data):
    cb, monitors = gated(tmp_path, data, budget=0.1, epochs=4)
    cb.budget.reset()
    cb.budget.expect(4)
    cb.budget.train(10.0)
    cb.budget.train(10.0)  # 2 s allowed now, 4 s projected
    cb.budget.charge(1.0)
    monitors["filters"].log_seconds = [0.3, 0.5]  # this record: 0.5 s
    assert cb._gate(monitors["filters"], "epoch")  # 1.0 + 0.5 <= 4: no final to keep
    monitors["embedding"].log_seconds = [3.0, 2.0]  # its final: 2 s
    # One (tracing) record of 1.2 s; the others' later records were not cheaper on the
    # median (0.5/0.3 and 2/3): its final is expected to take 1.2 s.
    monitors["occlusion"].log_seconds = [1.2]
    # 1.0 + 0.5 + 2.0 + 1.2 = 4.7 > 4: the trained model's final records come first
    assert not cb._gate(monitors["filters"], "epoch")
    monitors["occlusion"]._last_logged = 4  # its final is written: only the embedding's
    assert cb._gate(monitors["filters"], "epoch")  # 3.5 <= 4
    # The embedding's own record at the last epoch is its final: not counted twice.
    monitors["embedding"]._last_completed = 4
    assert cb._gate(monitors["embedding"], "epoch")  # 1.0 + 2.0 <= 4
    assert cb.skipped == {"filters": 1}
    cb.on_train_end()


def test_the_last_epochs_records_are_gated_as_final_and_a_skip_counts_once(tmp_path, data):
    cb, monitors = gated(tmp_path, data, budget=0.1, epochs=3)
    cb.budget.reset()
    cb.budget.expect(3)
    for _ in range(3):
        cb.budget.train(10.0)  # the last epoch: 3 s allowed in all
    cb.budget.charge(1.0)
    monitors["embedding"].log_seconds = [3.0, 1.5]  # this record 1.5 s
    monitors["occlusion"].log_seconds = [2.0, 1.0]  # its final 1.0 s
    for monitor in cb.monitors:
        monitor._last_completed = 3
    # As an epoch record the embedding's would also need room for occlusion's final
    # (1 + 1.5 + 1 > 3); but this is the last epoch: nothing comes after it but finals,
    # and it needs only to fit what is left (1 + 1.5 <= 3).
    assert cb._gate(monitors["embedding"], "epoch")
    cb.budget.charge(1.5)
    assert not cb._gate(monitors["occlusion"], "epoch")  # 2.5 + 1 > 3
    assert not cb._gate(monitors["occlusion"], "final")  # asked again at the end
    assert cb.skipped == {"occlusion": 1}  # one record skipped, not two
    cb.on_train_end()


def test_contention_is_the_slope_of_epoch_time_on_the_workers_busy_seconds():
    busy = (1.0, 1.0, 4.0, 1.0, 2.0)
    exact = [(12.0, 3.0)] + [(10.0 + 0.4 * b, b) for b in busy]
    assert contention(exact) == pytest.approx(0.4)  # noise-free: the slope itself
    # The first epoch (it traces the training step) is left out.
    assert contention([(30.0, 0.0)] + exact[1:]) == pytest.approx(0.4)
    # Noise raises it by two standard errors: residuals +-0.1 on the first two epochs
    # leave the slope at 0.4; busy spread sum((b - 1.8)^2) = 6.8, 3 degrees of freedom.
    noisy = [exact[0]] + [(t + e, b) for (t, b), e in zip(exact[1:], (0.1, -0.1, 0, 0, 0))]
    assert contention(noisy) == pytest.approx(0.4 + 2 * np.sqrt(0.02 / 3 / 6.8))
    # Unmeasured: fewer than 4 epochs after the first, or busy seconds that never vary.
    assert contention(exact[:4]) == 1.0
    assert contention([(10.0, 1.0)] * 6) == 1.0
    # Within [floor, 1]: training not slowed at all (a GPU), or slowed beyond the worker.
    assert contention([(10.0, b) for b in (0, 0, 1, 2, 3, 4)]) == CONTENTION_FLOOR
    assert contention([(10.0 + 2 * b, b) for b in (0, 0, 1, 2, 3, 4)]) == 1.0


def test_concurrent_seconds_are_charged_at_the_measured_contention():
    budget = TimeBudget(0.1)
    budget.concurrent = True  # records on a twin, beside training
    budget.expect(8)
    budget.charge(0.5)  # the training thread's time: in full
    budget.charge(2.0, concurrent=True)
    budget.train(12.0, 3.0)
    assert budget.contention == 1.0 and budget.own_seconds == pytest.approx(2.5)  # unmeasured
    for b in (1.0, 1.0, 4.0, 1.0):
        budget.train(10.0 + 0.4 * b, b)
    assert budget.contention == pytest.approx(0.4)
    assert budget.own_seconds == pytest.approx(0.5 + 0.4 * 2.0)  # re-priced as it is measured
    # Projected: 0.1 x 10.96 s per epoch x 8 = 8.768 s. A record expected to take 2 s beside
    # training costs 0.8: 1.3 + 0.8 + 6.0 kept for the finals fits; at full price it would not.
    assert budget.projected_allowance == pytest.approx(8.768)
    assert budget.beside_training
    assert budget.admits("epoch", True, [3.0, 2.0], reserve=6.0)
    budget.concurrent = False  # the same record in line: the training thread pays it all
    assert not budget.beside_training
    assert not budget.admits("epoch", True, [3.0, 2.0], reserve=6.0)
    budget.concurrent = True
    for _ in range(3):
        budget.train(10.4, 1.0)
    # After the last epoch records run with nothing beside them: full price again.
    assert budget.epochs_trained == 8 and not budget.beside_training
    assert not budget.admits("epoch", True, [3.0, 2.0], reserve=6.0)
    budget.reset()
    assert budget.epochs == [] and budget.own_seconds == 0.0 and budget.concurrent


def test_a_twin_record_is_charged_as_concurrent_until_training_ends_and_in_full_after(
    tmp_path, data
):
    cb, monitors = gated(tmp_path, data, budget=0.1, epochs=4)
    assert cb._runner is not None and cb.budget.concurrent  # records on the twin
    budget = cb.budget
    budget.reset()
    cb._account(True, monitors["filters"], 0.4)  # training goes on: all beside it
    assert budget.concurrent_seconds == pytest.approx(0.4) and budget.full_seconds == 0.0
    cb._ended = time.perf_counter() - 0.3  # the last epoch ended 0.3 s ago
    cb._account(True, monitors["filters"], 1.0)  # began 1 s ago: 0.7 beside, 0.3 after
    assert budget.concurrent_seconds == pytest.approx(1.1, abs=0.02)
    assert budget.full_seconds == pytest.approx(0.3, abs=0.02)
    cb._account(True, None, 0.05)  # the training thread's copy of the weights
    assert budget.full_seconds == pytest.approx(0.35, abs=0.02)
    cb._account(False, monitors["filters"], 2.0)  # the state before training: setup
    assert budget.setup_seconds == pytest.approx(2.0)
    assert budget.own_seconds == pytest.approx(1.45, abs=0.03)  # contention unmeasured: 1
    cb.on_train_end()
