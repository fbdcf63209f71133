"""Training never dies of a visualisation: numpy / tf.data / generator fits, a saved and
reloaded model, a process killed mid-training (SIGKILL, then TensorBoard reads the logs),
diverged training (NaN/inf loss or weights) and monitors that raise.
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from callback_helpers import MONITOR_CALLBACKS, kill_when_ready
from eventfiles import read_run
from keras_cnnvis import filter_grid, image
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.base import MonitorCallback
from robustness_models import LIGHT, shapes_data, tiny_cnn

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def data():
    return shapes_data()


def steps(run, tag):
    return [r.step for r in run[tag]]


def filters_png(model, layer="conv_a"):
    """The filter grid as read back from a PNG record (OpenCV's BGR order)."""
    return image.to_uint8(filter_grid(model, layer))[..., ::-1]


def diverged_warnings(caught) -> dict:
    counts: dict = {}
    for w in caught:
        text = str(w.message)
        if "training diverged" in text:
            name = text.split(":")[0]
            counts[name] = counts.get(name, 0) + 1
    return counts


# -- training life cycle ------------------------------------------------------------------


def test_numpy_tf_data_and_generator_fits_log_the_same(tmp_path, data):
    (x, y), (x_val, y_val, _) = data

    def batches():
        while True:
            for i in range(0, len(x), 8):
                yield x[i : i + 8], y[i : i + 8]

    inputs = {
        "numpy": ((x, y), {"batch_size": 8, "shuffle": False}),
        "tf_data": ((tf.data.Dataset.from_tensor_slices((x, y)).batch(8),), {}),
        "generator": ((batches(),), {"steps_per_epoch": len(x) // 8}),
    }
    runs, models = {}, {}
    for name, (args, kwargs) in inputs.items():
        cb = CNNVisCallback(
            str(tmp_path / name),
            validation_data=(x_val, y_val),
            include=("filters", "confusion", "patches"),
            expensive_every=2,
            on_error="raise",
            budget=None,
        )
        models[name] = tiny_cnn()
        models[name].fit(*args, epochs=3, verbose=0, callbacks=[cb], **kwargs)
        runs[name] = read_run(str(tmp_path / name / "cnnvis"))
    for name, run in runs.items():
        assert steps(run, "filters/conv_a") == [0, 1, 2, 3], name
        assert steps(run, "patches/conv_b") == [2, 3], name
        np.testing.assert_array_equal(run["filters/conv_a"][-1].value[0], filters_png(models[name]))
    # The same batches in the same order: the same training, the same records.
    for name in ("tf_data", "generator"):
        for tag in ("filters/conv_b", "patches/conv_a"):
            for a, b in zip(runs["numpy"][tag], runs[name][tag]):
                np.testing.assert_array_equal(a.value[0], b.value[0])
        assert [r.value for r in runs[name]["json/confusion/matrix"]] == [
            r.value for r in runs["numpy"]["json/confusion/matrix"]
        ]


def test_saved_and_reloaded_model_fits_on_with_the_same_callback(tmp_path, data):
    (x, y), (x_val, y_val, m_val) = data
    model = tiny_cnn()
    cb = CNNVisCallback(
        str(tmp_path / "logs"),
        validation_data=(x_val, y_val),
        masks=m_val,
        n_probes=5,
        include=("filters", "health", "activations", "grad_cam", "confusion", "classes"),
        expensive_every=2,
        options=LIGHT,
        on_error="raise",
        budget=None,
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.fit(x, y, initial_epoch=2, epochs=4, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "logs" / "cnnvis"))
    for tag in ("filters/conv_a", "activations/conv_b", "attribution/grad_cam", "confusion/matrix"):
        assert steps(run, tag) == [0, 1, 2, 2, 3, 4], tag
    assert steps(run, "synthesis/classes") == [2, 4]  # expensive: not at a fit's start
    # The reloaded model starts where the saved one ended ...
    grids = run["filters/conv_a"]
    np.testing.assert_array_equal(grids[2].value[0], grids[3].value[0])
    # ... and every monitor follows the reloaded model, not the one it was built for.
    np.testing.assert_array_equal(grids[-1].value[0], filters_png(loaded))
    assert not np.array_equal(grids[-1].value[0], filters_png(model))
    predicted = np.argmax(loaded.predict(x_val, verbose=0), axis=1)
    matrix = np.zeros((5, 5), int)
    np.add.at(matrix, (y_val, predicted), 1)
    assert run["json/confusion/matrix"][-1].value["matrix"] == matrix.tolist()
    probe_predictions = np.argmax(loaded.predict(cb.probe, verbose=0), axis=1)
    gradcam = run["json/attribution/grad_cam"][-1].value["probes"]
    assert [p["prediction"] for p in gradcam] == probe_predictions.tolist()
    health = run["json/health/conv_a"][-1].value
    assert health["update_over_epochs"] == 1  # its history restarted with the new model


def test_sigkill_mid_training_keeps_every_logged_step_readable(tmp_path):
    log_dir = tmp_path / "logs"
    run_dir = str(log_dir / "cnnvis")
    seen: dict = {}

    def three_steps_logged() -> bool:
        if os.path.isdir(run_dir):
            seen.clear()
            seen.update(read_run(run_dir))
        return len(seen.get("json/confusion/matrix", [])) >= 3

    kill_when_ready(os.path.join(HERE, "robustness_train_script.py"), [log_dir], three_steps_logged)
    assert len(seen.get("json/confusion/matrix", [])) >= 3, "fewer than 3 steps logged in time"

    after = read_run(run_dir)
    # Everything read before the kill is still there, byte for byte.
    for tag, records in seen.items():
        assert len(after[tag]) >= len(records), tag
        for before, now in zip(records, after[tag]):
            assert before.step == now.step
            if before.plugin == "images":
                for a, b in zip(before.value, now.value):
                    np.testing.assert_array_equal(a, b)
            else:
                assert before.value == now.value
    # Every step is complete except possibly the one being written at the kill.
    by_step: dict = {}
    for tag, records in after.items():
        for r in records:
            by_step.setdefault(r.step, set()).add(tag)
    logged = sorted(by_step)
    assert logged == list(range(len(logged)))
    complete = by_step[0]
    assert {
        "filters/conv_a",
        "health/conv_b",
        "attribution/grad_cam",
        "confusion/matrix",
    } <= complete
    # (Grad-CAM's faithfulness scores follow the expensive schedule: every 5th step.)
    every_step = {t for t in complete if "median_update_ratio" not in t and "faithfulness" not in t}
    for step in logged[:-1]:
        assert by_step[step] >= every_step
    assert max(r.step for r in seen["json/confusion/matrix"]) <= logged[-1]


# -- faults -------------------------------------------------------------------------------


def test_diverged_training_warns_once_per_monitor_and_keeps_earlier_logs(tmp_path, data):
    (x, y), (x_val, y_val, m_val) = data
    model = tiny_cnn()
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        masks=m_val,
        n_probes=5,
        expensive_every=1,
        options=LIGHT,
        budget=None,
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    before = read_run(str(tmp_path / "cnnvis"))
    model.optimizer.learning_rate.assign(1e30)  # the next epoch diverges
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, initial_epoch=1, epochs=4, verbose=0, callbacks=[cb])
    losses = history.history["loss"]
    assert len(losses) == 3 and not np.isfinite(losses).any()  # training went on
    assert diverged_warnings(caught) == {name: 1 for name in MONITOR_CALLBACKS.values()}
    assert not [w for w in caught if "failed at step" in str(w.message)]
    after = read_run(str(tmp_path / "cnnvis"))
    assert set(after) == set(before)
    for tag, records in after.items():
        # Fit 1 logged 0 (the cheap monitors) and 1; fit 2 its initial (still finite)
        # state 1 where fit 1 logged its initial one, then nothing (an update ratio needs a
        # previous record of the same fit).
        initial = steps(before, tag)[0] == 0 and not tag.endswith("median_update_ratio")
        fit2 = [1] if initial else []
        assert steps(after, tag) == steps(before, tag) + fit2, tag
        for a, b in zip(before[tag], records):
            if a.plugin == "images":
                np.testing.assert_array_equal(a.value[0], b.value[0])
            else:
                assert a.value == b.value


def _onednn_on() -> bool:
    from keras_cnnvis.model.traps import onednn_enabled

    return onednn_enabled()


@pytest.mark.skipif(
    not _onednn_on(),
    reason="oneDNN's ReLU maps NaN to 0, which keeps this loss finite; Eigen's keeps the NaN",
)
def test_nan_weights_behind_a_finite_loss_skip_all_but_health(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    model = tiny_cnn()
    kernel = model.get_layer("conv_b").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    cb = CNNVisCallback(str(tmp_path), validation_data=(x_val, y_val), options=LIGHT, budget=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    # ReLU maps NaN to 0 here, so the loss stays finite: only the weights tell.
    assert np.isfinite(history.history["loss"]).all()
    assert diverged_warnings(caught) == {
        n: 1 for n in MONITOR_CALLBACKS.values() if n != "FilterHealthCallback"
    }
    assert not [w for w in caught if "All-NaN" in str(w.message) or "failed at" in str(w.message)]
    run = read_run(str(tmp_path / "cnnvis"))
    # Health is the monitor that diagnoses it: every conv_b filter flagged non-finite.
    assert {t.split("/")[0] for t in run if not t.startswith("json/")} == {"health"}
    for record in run["json/health/conv_b"]:
        assert record.value["flags"]["non_finite"] == list(range(6))
    assert steps(run, "json/health/conv_b") == [0, 1, 2]
    # The weights are read once per record set (before training, 2 epochs, the expensive
    # monitors' final records), not once per monitor.
    assert cb._finite.checks == 4


class FailsAtStep(MonitorCallback):
    """A monitor with a bug: logs the first kernel's sum, raises at step `bad`."""

    def __init__(self, log_dir, bad, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.bad = bad

    def log(self, step, logs=None):
        if step == self.bad:
            raise IndexError(f"bug at {step}")
        self.writer.scalar(
            "test/kernel_sum", float(np.sum(np.asarray(self.model.layers[1].kernel))), step
        )


def test_failing_monitor_warns_once_and_steps_aside_while_training_goes_on(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    failing = FailsAtStep(str(tmp_path), bad=2)
    # A user's callable target that cannot work: Grad-CAM fails at its first record.
    cnnvis = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "grad_cam"),
        options={"grad_cam": {"target": lambda outputs: outputs[:, 99]}},
        budget=None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_cnn().fit(x, y, epochs=4, verbose=0, callbacks=[failing, cnnvis])
    assert len(history.history["loss"]) == 4
    failures = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert len(failures) == 2
    assert failures[0].startswith("GradCAMCallback failed at step 0 and is switched off")
    assert failures[1] == (
        "FailsAtStep failed at step 2 and is switched off for the rest of this fit "
        "(training continues): IndexError: bug at 2"
    )
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "test/kernel_sum") == [0, 1]  # nothing after the failure
    assert steps(run, "filters/conv_a") == [0, 1, 2, 3, 4]  # the others go on
    assert not [t for t in run if "attribution" in t]
    assert failing.disabled and [m.disabled for m in cnnvis.monitors] == [False, True]


def test_on_error_raise_re_raises(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    with pytest.raises(IndexError, match="bug at 1"):
        tiny_cnn().fit(
            x, y, epochs=3, verbose=0, callbacks=[FailsAtStep(str(tmp_path), 1, on_error="raise")]
        )
    cnnvis = CNNVisCallback(
        str(tmp_path / "b"),
        validation_data=(x_val, y_val),
        include=("grad_cam",),
        options={"grad_cam": {"target": lambda outputs: outputs[:, 99]}},
        on_error="raise",
        budget=None,
    )
    with pytest.raises(Exception, match="99"):
        tiny_cnn().fit(x, y, epochs=1, verbose=0, callbacks=[cnnvis])
