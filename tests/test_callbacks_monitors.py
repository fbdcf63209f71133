"""The monitor registry: a monitor is one callback, one registry entry and one test; the entry
alone makes CNNVisCallback build, schedule and budget it."""

import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis.callbacks import CNNVisCallback, MonitorCallback
from keras_cnnvis.callbacks.cnnvis import CHEAP, CLASSES, EXPENSIVE, MONITORS
from keras_cnnvis.callbacks.monitors import (
    REGISTRY,
    Monitor,
    MonitorData,
    register_monitor,
    unregister_monitor,
)
from robustness_models import shapes_data, tiny_cnn


class ProbeMeanCallback(MonitorCallback):
    """A toy monitor: the mean pixel of the probes it was given, as a scalar."""

    def __init__(self, log_dir, probe, scale=1.0, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.probe, self.scale = probe, scale

    def log(self, step, logs=None):
        self.writer.scalar("toy/probe_mean", float(np.mean(self.probe)) * self.scale, step)


def test_registry_lists_every_monitor_once_cheap_first():
    assert MONITORS == tuple(REGISTRY) and len(set(MONITORS)) == len(MONITORS)
    assert CHEAP == ("filters", "health", "activations", "grad_cam", "confusion", "network")
    assert EXPENSIVE == (
        "saliency",
        "occlusion",
        "patches",
        "embedding",
        "neighbors",
        "classes",
        "robustness",
    )
    assert CLASSES["patches"] == "MaxActivatingPatchesCallback"
    for monitor in REGISTRY.values():
        assert issubclass(monitor.callback_class, MonitorCallback), monitor.name


def test_availability_follows_the_data():
    probe = np.zeros((2, 4, 4, 3))
    only_probe = MonitorData(layers=[], probe=probe)
    unlabelled = MonitorData(layers=[], probe=probe, x_val=probe)
    full = MonitorData(layers=[], probe=probe, x_val=probe, y_val=np.zeros(2))
    available = lambda data: [n for n, m in REGISTRY.items() if m.available(data)]  # noqa: E731
    assert available(MonitorData(layers=[])) == ["filters", "health", "classes"]
    assert "patches" not in available(only_probe) and "patches" in available(unlabelled)
    assert "embedding" not in available(unlabelled) and available(full) == list(MONITORS)
    with pytest.raises(ValueError, match=r"needs \['gpu'\]"):
        register_monitor(Monitor("bad", ProbeMeanCallback, True, ("gpu",)))


def test_a_registered_monitor_runs_in_cnnvis_callback(tmp_path):
    (x, y), (x_val, y_val, _) = shapes_data()
    register_monitor(
        Monitor(
            "probe_mean",
            ProbeMeanCallback,
            cheap=False,
            needs=("probe",),
            arguments=lambda data: {"probe": data.probe},
        )
    )
    try:
        assert list(REGISTRY)[-1] == "probe_mean"  # expensive: after the cheap ones
        model = tiny_cnn()
        cb = CNNVisCallback(
            str(tmp_path),
            validation_data=(x_val, y_val),
            include=("filters", "probe_mean"),
            options={"probe_mean": {"scale": 2.0}},
            expensive_every=2,
            budget=None,
        )
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
        assert cb.names == ["filters", "probe_mean"]
        run = read_run(str(tmp_path / "cnnvis"))
        records = run["toy/probe_mean"]
        # expensive: every 2 epochs and at the end (not the untrained model)
        assert [r.step for r in records] == [2, 3]
        expected = 2.0 * float(np.mean(cb.probe))
        assert all(r.value == pytest.approx(expected, rel=1e-6) for r in records)
        with pytest.raises(ValueError, match=r"options\['probe_mean'\] has \['colour'\]"):
            CNNVisCallback(str(tmp_path), options={"probe_mean": {"colour": 1}})
    finally:
        unregister_monitor("probe_mean")
    assert "probe_mean" not in REGISTRY
