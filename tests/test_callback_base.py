"""MonitorCallback life cycle: chief-only writing, unwritable log dirs, diverged training."""

import json
import os
import warnings

import keras
import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis.callbacks.base import MonitorCallback, is_chief


class CountingMonitor(MonitorCallback):
    """Writes one scalar per logged step: the sum of the first kernel's weights."""

    def log(self, step, logs=None):
        kernel = self.model.layers[0].kernel
        self.writer.scalar("test/kernel_sum", float(np.sum(np.asarray(kernel))), step)


def tiny_model():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
        (
            {
                "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
        ),
        (
            {
                "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
                "task": {"type": "chief", "index": 0},
            },
            True,
        ),
    ],
)
def test_chief_rule(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief


def test_non_chief_worker_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}),
    )
    x = np.ones((8, 8, 8, 1), np.float32)
    tiny_model().fit(x, np.ones(8), epochs=2, verbose=0, callbacks=[CountingMonitor(str(tmp_path))])
    assert os.listdir(tmp_path) == []


def test_log_dir_under_a_file_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    cb = CountingMonitor(str(blocker / "logs"))
    x = np.ones((8, 8, 8, 1), np.float32)
    with pytest.raises(
        ValueError, match=r"cannot be written .*file.txt' is not a writable directory"
    ):
        tiny_model().fit(x, np.ones(8), epochs=1, verbose=0, callbacks=[cb])


def test_diverged_training_skips_with_one_warning_and_keeps_logs(tmp_path):
    model = tiny_model()
    x = np.ones((8, 8, 8, 1), np.float32)
    cb = CountingMonitor(str(tmp_path), on_error="raise")
    model.fit(x, np.ones(8), epochs=2, verbose=0, callbacks=[cb])
    model.optimizer.learning_rate.assign(1e30)  # diverge: the loss becomes inf/nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, np.full(8, 1e3), initial_epoch=2, epochs=5, verbose=0, callbacks=[cb]
        )
    assert not np.isfinite(history.history["loss"][-1])
    ours = [w for w in caught if "training diverged" in str(w.message)]
    assert len(ours) == 1
    steps = [r.step for r in read_run(str(tmp_path / "cnnvis"))["test/kernel_sum"]]
    # Fit 1 logs 0, 1, 2; fit 2 logs its initial state (2) and each finite epoch only.
    finite_epochs = [e + 3 for e, loss in enumerate(history.history["loss"]) if np.isfinite(loss)]
    assert steps == [0, 1, 2, 2] + finite_epochs


def test_a_callback_warns_once_about_the_onednn_trap(tmp_path, monkeypatch):
    import warnings

    import keras_cnnvis.model.traps as traps
    from callback_helpers import random_data
    from keras_cnnvis.callbacks import FilterGridCallback

    monkeypatch.setattr(traps, "onednn_enabled", lambda *a, **k: True)  # as on a user's CPU
    i = keras.Input((16, 16, 3))
    # Frozen: the trap is in the weight gradient of such a layer, which is never taken.
    x = keras.layers.Conv2D(4, 3, padding="same", name="a", trainable=False)(i)
    x = keras.layers.Conv2D(8, 1, strides=2, name="shortcut", trainable=False)(x)
    model = keras.Model(i, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile("sgd", "mse")
    x, _ = random_data(8)
    callbacks = [FilterGridCallback(str(tmp_path), layers=["a"]) for _ in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, np.zeros((8, 2)), epochs=1, verbose=0, callbacks=callbacks)
    trap = [str(w.message) for w in caught if "TF_ENABLE_ONEDNN_OPTS=0" in str(w.message)]
    assert len(trap) == 1 and "shortcut" in trap[0]
