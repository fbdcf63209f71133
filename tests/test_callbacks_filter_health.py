"""FilterHealthCallback in a real fit: exact tags and steps, scores equal to a recomputation,
outlined grids, the end-of-training warning, two fits in a row, and misconfiguration."""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen, random_data, small_cnn
from eventfiles import read_run
from keras_cnnvis.callbacks import FilterHealthCallback
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.health import health_grid
from keras_cnnvis.weights.health import filter_health, snapshot_kernels


@pytest.fixture
def data():
    return random_data()


class _Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.kernels = {}

    def on_epoch_end(self, epoch, logs=None):
        self.kernels[epoch + 1] = snapshot_kernels(self.model)


def test_fit_logs_scalars_grids_and_records_equal_to_a_recomputation(tmp_path, data):
    model = small_cnn()
    probe = data[0][:8]
    initial = snapshot_kernels(model)
    snaps = _Snapshots()
    cb = FilterHealthCallback(str(tmp_path), probe=probe, on_error="raise", warn=False)
    model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[snaps, cb])
    run = read_run(str(tmp_path / "cnnvis"))
    layers = ("conv_a", "conv_b", "dense")
    # Matrices of 6, 4 and 2 columns: too few eigenvalues for alpha (NaN, not written).
    scores = (
        "noise_like_fraction",
        "dead_fraction",
        "saturated_fraction",
        "mean_drift",
        "spike_ratio",
    )
    expected = {
        f"health/{n}/{s}"
        for n in layers
        for s in scores
        if not (n == "dense" and s == "noise_like_fraction")
    }
    expected |= {f"health/{n}/median_update_ratio" for n in layers}
    expected |= {f"json/health/{n}" for n in layers} | {"health/conv_a", "health/conv_b"}
    assert set(run) == expected
    for tag, records in run.items():
        steps = [1, 2] if tag.endswith("median_update_ratio") else [0, 1, 2]
        assert [r.step for r in records] == steps, tag
    assert run["health/conv_a/mean_drift"][0].value == 0.0
    # Drift and update ratio at step 2 are those of the weights before, after epoch 1 and 2.
    w0 = initial["conv_a"].reshape(-1, 6)
    w1, w2 = (snaps.kernels[e]["conv_a"].reshape(-1, 6) for e in (1, 2))
    norm = lambda w: np.linalg.norm(w, axis=0)  # noqa: E731
    drift = np.mean(norm(w2 - w0) / norm(w0))
    update = np.median(norm(w2 - w1) / norm(w2))
    assert run["health/conv_a/mean_drift"][-1].value == pytest.approx(drift, rel=1e-4)
    assert run["health/conv_a/median_update_ratio"][-1].value == pytest.approx(update, rel=1e-4)
    # The last record and grid are exactly a recomputation on the final model.
    report = filter_health(
        model, probe=probe, initial_weights=initial, previous_weights=snaps.kernels[1]
    )
    rec = run["json/health/conv_a"][-1].value
    h = report["conv_a"]
    assert rec["verdict"] == h.verdict and rec["flags"] == h.flags
    assert rec["columns"] == ["index", *h.columns] and len(rec["filters"]) == 6
    assert (
        rec["update_over_epochs"] == 1
        and rec["grid"]["cols"] == 3
        and rec["grid"]["tile"] == [30, 30]
    )
    assert rec["filters"][2]["drift"] == pytest.approx(float(h.table["drift"][2]), rel=1e-3)
    grid, _ = health_grid(model, h)
    np.testing.assert_array_equal(
        run["health/conv_a"][-1].value[0][..., ::-1], image.to_uint8(grid)
    )
    # After 2 epochs on random data the 5x5 kernels are still noise-like: outlined in red.
    assert h.flags["noise_like"]
    first = h.flags["noise_like"][0]
    r, c = divmod(first, 3)
    y, x = 1 + r * 31, 1 + c * 31
    np.testing.assert_array_equal(run["health/conv_a"][-1].value[0][y, x + 5], [0, 0, 230])  # BGR


def stalled_cnn(frozen: bool = False) -> keras.Model:
    """`small_cnn` trained at learning rate 0: its trainable layers cannot move."""
    model = small_cnn(frozen=frozen)
    model.compile(keras.optimizers.Adam(0.0), "sparse_categorical_crossentropy")
    return model


def health_warnings(caught) -> list:
    return [w for w in caught if "FilterHealthCallback" in str(w.message)]


def test_warning_names_the_stalled_layer_and_not_the_frozen_one(tmp_path, data):
    # conv_a frozen on purpose; conv_b trainable but stalled (learning rate 0).
    model = stalled_cnn(frozen=True)
    cb = FilterHealthCallback(str(tmp_path), layers=["conv_a", "conv_b"], on_error="raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    ours = health_warnings(caught)
    assert len(ours) == 1 and issubclass(ours[0].category, UserWarning)
    message = str(ours[0].message)
    assert "1 of 2 layers look non-converged" in message
    assert "'conv_b' (not learning" in message and "conv_a" not in message
    assert cb.report["conv_a"].evidence["max_drift"] == 0.0
    run = read_run(str(tmp_path / "cnnvis"))
    rec = run["json/health/conv_a"][-1].value
    assert rec["verdict"] == "frozen; noise-like filters"
    assert rec["frozen"] is True and rec["converged"] is True
    assert rec["evidence"]["noise_like_fraction"] >= 0.75  # structure scores still logged
    assert run["json/health/conv_b"][-1].value["verdict"].startswith("not learning")
    # warn=False keeps quiet.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stalled_cnn().fit(
            *data,
            epochs=1,
            verbose=0,
            callbacks=[FilterHealthCallback(str(tmp_path / "quiet"), layers="conv_a", warn=False)],
        )
    assert not health_warnings(caught)


def test_no_warning_for_a_frozen_nested_base_in_a_real_fit(tmp_path, data):
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(6, 5, padding="same", activation="relu", name="b1"),
            keras.layers.Conv2D(4, 3, activation="relu", name="b2"),
        ],
        name="base",
    )
    base.trainable = False
    i = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(i))
    model = keras.Model(i, keras.layers.Dense(2, activation="softmax", name="head")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = FilterHealthCallback(str(tmp_path), probe=data[0][:8], on_error="raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    assert not health_warnings(caught)
    assert [h.layer for h in cb.report.frozen()] == ["base/b1", "base/b2"]
    assert cb.report["base/b1"].verdict.startswith("frozen; noise-like filters")
    assert not cb.report["head"].frozen and cb.report.non_converged() == []


def test_two_fits_continue_the_drift_history(tmp_path, data):
    model = small_cnn()
    cb = FilterHealthCallback(str(tmp_path), layers="conv_b", on_error="raise", warn=False)
    model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    model.fit(*data, initial_epoch=2, epochs=3, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    drift = run["health/conv_b/mean_drift"]
    assert [r.step for r in drift] == [0, 1, 2, 2, 3]
    assert drift[3].value == drift[2].value > 0  # measured from the first fit's start
    assert [r.step for r in run["health/conv_b/median_update_ratio"]] == [1, 2, 3]


def test_every_n_epochs_logs_at_the_end_and_update_spans_the_gap(tmp_path, data):
    model = small_cnn()
    cb = FilterHealthCallback(
        str(tmp_path), layers="conv_b", every_n_epochs=2, log_initial=False, warn=False
    )
    model.fit(*data, epochs=3, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    recs = run["json/health/conv_b"]
    assert [r.step for r in recs] == [2, 3]  # step 3: the final state, logged at train end
    assert recs[0].value["update_over_epochs"] is None and recs[1].value["update_over_epochs"] == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layers": ["conv_z"]}, r"No layer named 'conv_z'"),
        ({"layers": ["gap"]}, r"'gap' \(GlobalAveragePooling2D\) has no kernel to show"),
        (
            {"probe": np.zeros((2, 8, 8, 3), np.float32)},
            r"probe images have shape \(2, 8, 8, 3\); model .* expects \(N, 16, 16, 3\)",
        ),
    ],
)
def test_misconfiguration_raises_before_the_first_epoch(tmp_path, data, kwargs, message):
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        small_cnn().fit(
            *data,
            epochs=2,
            verbose=0,
            callbacks=[epochs, FilterHealthCallback(str(tmp_path), **kwargs)],
        )
    assert epochs.begun == []
    assert not os.path.exists(tmp_path / "cnnvis")


def test_constructor_validation():
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        FilterHealthCallback("x", alpha=2)
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 0"):
        FilterHealthCallback("x", every_n_epochs=-1)


def test_no_end_of_training_warning_from_a_report_older_than_the_trained_model(tmp_path, data):
    # Logs at steps 0 and 2 of a 3-epoch fit; a gate (CNNVisCallback's time budget) skips
    # the final record, so the last report does not describe the end of training.
    cb = FilterHealthCallback(str(tmp_path), layers="conv_a", every_n_epochs=2, on_error="raise")
    cb.gate = lambda monitor, phase: phase != "final"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stalled_cnn().fit(*data, epochs=3, verbose=0, callbacks=[cb])
    assert cb.report["conv_a"].verdict.startswith("not learning")  # it would have warned
    assert not [w for w in caught if "FilterHealthCallback" in str(w.message)]
    assert [r.step for r in read_run(str(tmp_path / "cnnvis"))["json/health/conv_a"]] == [0, 2]
