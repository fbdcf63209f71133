"""Records on a twin of the model (keras_cnnvis/callbacks/twin.py): CNNVisCallback's monitors run
whole in the background worker on a clone loaded with the weights of the hook, never on the
trained model; a monitor failing there is switched off alone; models that cannot be cloned
faithfully fall back to the training thread."""

from __future__ import annotations

import threading
import warnings

import keras
import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis import summary
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks import twin as twin_module
from keras_cnnvis.callbacks.monitors import Monitor, register_monitor, unregister_monitor
from keras_cnnvis.callbacks.twin import TwinRunner, make_twin
from keras_cnnvis.callbacks.worker import RecordWorker
from robustness_models import shapes_data, tiny_cnn
from worker_helpers import ToyMonitor


class TwinToy(ToyMonitor):
    """A ToyMonitor CNNVisCallback can build; it notes the model and thread of each record."""

    def __init__(
        self, log_dir, every_n_epochs=1, log_initial=True, run_name="cnnvis", on_error="warn", **kw
    ):
        super().__init__(log_dir, **kw)
        self.every_n_epochs, self.log_initial = every_n_epochs, log_initial
        self.run_name, self.on_error = run_name, on_error
        self.seen: list[tuple] = []  # (model, thread) of each record

    def log(self, step, logs=None):
        self.seen.append((self.model, threading.get_ident()))
        return super().log(step, logs)


@pytest.fixture(scope="module")
def data():
    return shapes_data()


@pytest.fixture(params=[True])
def toy(request):
    """Registers a `toy` monitor, cheap unless the test's parameter says False (arguments
    set per test through `toy.update`)."""
    arguments: dict = {}
    register_monitor(Monitor("toy", TwinToy, request.param, (), lambda d: dict(arguments)))
    yield arguments
    unregister_monitor("toy")


def test_records_run_on_the_twin_in_the_worker_with_the_weights_of_their_epoch(tmp_path, data, toy):
    (x, y), _ = data
    toy.update(name="twin", pause=0.05)
    model = tiny_cnn()
    sums = []  # the trained model's kernel sum before training and after each epoch
    watch = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: sums.append(float(np.sum(model.layers[1].kernel.numpy()))),
        on_epoch_end=lambda e, logs: sums.append(float(np.sum(model.layers[1].kernel.numpy()))),
    )
    cb = CNNVisCallback(str(tmp_path), include=("filters", "toy"), budget=None, on_error="raise")
    model.fit(x, y, epochs=4, verbose=0, callbacks=[watch, cb])
    assert cb.twin_model is not None and cb.twin_reason is None
    monitor = cb.monitors[cb.names.index("toy")]
    # Every record saw the twin, on the worker thread, never the trained model.
    assert [m is cb.twin_model for m, _ in monitor.seen] == [True] * 5
    assert threading.get_ident() not in {t for _, t in monitor.seen}
    assert not monitor.background  # in line inside the worker's task
    # Each record holds the weights of its hook, although training ran on meanwhile.
    run = read_run(str(tmp_path / "cnnvis"))
    logged = [r.value for r in run["toy/twin/kernel_sum"]]
    assert [r.step for r in run["toy/twin/kernel_sum"]] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(logged, sums, rtol=1e-6)
    assert len(set(np.round(sums, 6))) == 5  # the weights did change every epoch
    assert [r.step for r in run["filters/conv_a"]] == [0, 1, 2, 3, 4]


def test_a_monitor_failing_on_the_twin_is_switched_off_alone(tmp_path, data, toy):
    (x, y), _ = data
    toy.update(name="bad", fail_at=2)
    cb = CNNVisCallback(str(tmp_path), include=("filters", "toy"), budget=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_cnn().fit(x, y, epochs=5, verbose=0, callbacks=[cb])
    assert cb.twin_model is not None
    assert len(history.history["loss"]) == 5
    failures = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert len(failures) == 1 and "TwinToy failed at step 2" in failures[0]
    assert "IndexError: background bug at 2" in failures[0]
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["toy/bad/kernel_sum"]] == [0, 1]
    assert [r.step for r in run["filters/conv_a"]] == [0, 1, 2, 3, 4, 5]


def test_on_error_raise_raises_a_failure_on_the_twin_in_the_training_thread(tmp_path, data, toy):
    (x, y), _ = data
    toy.update(fail_at=1)
    cb = CNNVisCallback(str(tmp_path), include=("toy",), budget=None, on_error="raise")
    with pytest.raises(IndexError, match="background bug at 1"):
        tiny_cnn().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert cb.twin_model is not None


class Apply(keras.layers.Layer):
    """A layer taking a Python function: Keras cannot write its config, so no clone."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def call(self, x):
        return self.fn(x)


def test_a_model_that_cannot_be_cloned_keeps_the_model_part_on_the_training_thread(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv_a")(
        Apply(lambda t: t * 0.5)(inputs)
    )
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(int(y.max()) + 1)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    twin, reason = make_twin(model)
    assert twin is None and "clone_model failed" in reason
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "confusion"),
        budget=None,
        on_error="raise",
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.twin_model is None and "clone_model failed" in cb.twin_reason
    assert all(m.model is model and m.background for m in cb.monitors)
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["confusion/matrix"]] == [0, 1, 2]


def test_twin_of_a_fine_tuned_application_computes_what_the_model_computes():
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(48, 48, 3))
    base.trainable = False
    inputs = keras.Input((48, 48, 3))
    h = keras.layers.RandomFlip("horizontal")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(base(h))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    images = np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 3)).astype("float32")
    twin, reason = make_twin(model, images)
    assert reason is None and twin is not model
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    nested = twin.get_layer(base.name)
    assert [layer.name for layer in nested.layers] == [layer.name for layer in base.layers]
    assert not any(w is v for w, v in zip(twin.weights, model.weights))
    np.testing.assert_array_equal(twin.predict(images, verbose=0), model.predict(images, verbose=0))


class Blocking:
    """A monitor stand-in whose hook waits for `release`."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def on_epoch_end(self, epoch, logs):
        self.calls += 1
        self.release.wait(30)


def test_the_training_thread_waits_once_the_weight_copies_fill_their_bytes(tmp_path, monkeypatch):
    model = tiny_cnn()
    size = sum(w.numpy().nbytes for w in model.weights)
    monkeypatch.setattr(twin_module, "SNAPSHOT_BYTES", 2 * size)
    writer = summary.LogWriter(str(tmp_path))
    runner = TwinRunner(model, keras.models.clone_model(model), RecordWorker(writer))
    assert runner.max_pending == 2
    hook = Blocking()
    runner.run([hook], "on_epoch_end", (0, None), step=1)
    runner.run([hook], "on_epoch_end", (1, None), step=2)
    third = threading.Thread(target=runner.run, args=([hook], "on_epoch_end", (2, None), 3))
    third.start()
    third.join(0.5)
    assert third.is_alive()  # two copies wait: the third copy waits for room
    hook.release.set()
    third.join(30)
    runner.drain()
    assert not third.is_alive() and hook.calls == 3 and len(runner.snapshot_seconds) == 3
    writer.close()


def test_the_worker_counts_the_seconds_it_computed_record_sets_within_a_window(tmp_path):
    import time

    model = tiny_cnn()
    writer = summary.LogWriter(str(tmp_path))
    runner = TwinRunner(model, keras.models.clone_model(model), RecordWorker(writer))
    hook = Blocking()
    start, before = time.perf_counter(), runner.worker.busy_total()
    runner.run([hook], "on_epoch_end", (0, None), step=1)
    while hook.calls == 0:  # the record set has started
        time.sleep(0.01)
    time.sleep(0.3)
    running = runner.worker.busy_total() - before
    assert 0.3 <= running <= time.perf_counter() - start  # the running set counts
    middle, at_middle = time.perf_counter(), runner.worker.busy_total()
    time.sleep(0.1)
    hook.release.set()
    runner.drain()
    end = time.perf_counter()
    total = runner.worker.busy_total() - before
    assert running < total <= end - start
    time.sleep(0.05)
    assert runner.worker.busy_total() - before == total  # nothing ran after it
    # A window cut through the set: at most the window's length.
    assert runner.worker.busy_total() - at_middle <= end - middle
    writer.close()


def test_the_budget_charges_the_records_computed_in_the_worker(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    cb = CNNVisCallback(
        str(tmp_path), validation_data=(x_val, y_val), include=("filters", "confusion"), budget=50.0
    )
    tiny_cnn().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert cb.twin_model is not None and not cb.skipped
    # The records after the initial ones ran in the worker and were charged there.
    during_training = sum(sum(m.log_seconds[1:]) for m in cb.monitors)
    assert all(len(m.log_seconds) == 4 for m in cb.monitors)
    assert cb.budget.own_seconds >= during_training > 0  # 3 epochs: contention unmeasured
    # Beside training (concurrent) until the last epoch ended, in full after it (the split
    # is in test_budget); the training thread's weight copies in full. Nothing is lost.
    budget = cb.budget
    assert budget.concurrent
    copies = budget.concurrent_seconds + budget.full_seconds - during_training
    assert 0 <= copies < 0.1  # four copies of a tiny model's weights
    # Each epoch's training time came with the worker's busy seconds in it.
    assert len(budget.epochs) == 3 and sum(b for _, b in budget.epochs) > 0


@pytest.mark.parametrize("twin", [True, False], ids=["twin", "in line"])
def test_every_record_after_training_began_is_charged_the_initial_ones_are_setup(
    tmp_path, data, toy, twin
):
    (x, y), _ = data
    toy.update(pause=0.25)
    cb = CNNVisCallback(str(tmp_path), include=("toy",), budget=1e9, background=twin)
    tiny_cnn().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    seconds = cb.monitors[0].log_seconds
    assert len(seconds) == 4 and (cb.twin_model is not None) == twin
    # The state before training is setup; the records after epochs 1-3 are charged, the
    # first of them (it traces) too. 3 epochs: no contention measured, all in full.
    assert cb.budget.contention == 1.0
    assert sum(seconds[1:]) <= cb.budget.own_seconds < sum(seconds[1:]) + 0.1
    assert cb.budget.setup_seconds >= seconds[0]


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_a_twin_that_fails_switches_every_monitor_off_once_and_training_goes_on(
    tmp_path, data, on_error
):
    (x, y), _ = data
    cb = CNNVisCallback(str(tmp_path), include=("filters",), budget=None, on_error=on_error)

    def boom(weights):
        raise MemoryError("no room for the copy")

    def break_twin(epoch, logs):
        if epoch == 1:  # before the callback's own hook of epoch 1 (step 2)
            cb.twin_model.set_weights = boom

    breaker = keras.callbacks.LambdaCallback(on_epoch_end=break_twin)
    model = tiny_cnn()
    if on_error == "raise":
        with pytest.raises(MemoryError, match="no room"):
            model.fit(x, y, epochs=4, verbose=0, callbacks=[breaker, cb])
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=4, verbose=0, callbacks=[breaker, cb])
    assert len(history.history["loss"]) == 4
    notes = [str(w.message) for w in caught if "twin failed" in str(w.message)]
    assert len(notes) == 1 and "at step 2" in notes[0] and "MemoryError" in notes[0]
    assert all(m.disabled for m in cb.monitors)
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["filters/conv_a"]] == [0, 1]
