"""ActivationMapsCallback in a real fit: tags, steps, one grid per probe, exact pixels, and
probe validation before the first epoch."""

import os

import numpy as np
import pytest

from callback_helpers import EpochsSeen, random_data, small_cnn
from eventfiles import read_run
from keras_cnnvis.activations import activation_maps
from keras_cnnvis.callbacks import ActivationMapsCallback
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.activations import activation_grid


@pytest.fixture
def data():
    return random_data()


def test_fit_logs_one_grid_per_probe_for_each_layer(tmp_path, data):
    model = small_cnn()
    probe = data[0][:3]
    cb = ActivationMapsCallback(str(tmp_path), probe, order="mean", on_error="raise")
    model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    layers = ("conv_a", "conv_b")
    assert set(run) == {f"activations/{n}" for n in layers} | {
        f"json/activations/{n}" for n in layers
    }
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    # conv_a: 6 maps of 16x16 (x2 = 32 px) in a 2x3 grid; conv_b: 4 maps of 14x14 (x2) in 2x2.
    a = run["activations/conv_a"][-1].value
    assert len(a) == 3 and all(g.shape == (2 * 33 + 1, 3 * 33 + 1) for g in a)
    b = run["activations/conv_b"][-1].value
    assert len(b) == 3 and all(g.shape == (2 * 29 + 1, 2 * 29 + 1) for g in b)
    meta = run["json/activations/conv_a"][-1].value
    final = activation_maps(model, probe, "conv_a", order="mean")["conv_a"]
    assert meta["order"] == "mean" and meta["n_channels"] == 6 and meta["n_probes"] == 3
    assert meta["channels"] == final.channels
    assert meta["grid"] == {"rows": 2, "cols": 3, "tile": [32, 32], "pad": 1, "scale": 1}
    # The last record is exactly the final model's maps rendered (PNG is lossless).
    expected = image.to_uint8(activation_grid(final))
    for k in range(3):
        np.testing.assert_array_equal(a[k], expected[k, ..., 0])
    # Training changed the maps.
    assert not np.array_equal(run["activations/conv_a"][0].value[0], a[0])


def test_chosen_layers_channel_cap_and_colormap(tmp_path, data):
    model = small_cnn()
    cb = ActivationMapsCallback(
        str(tmp_path),
        data[0][:2],
        layers=["conv_b"],
        max_channels=3,
        cmap="viridis",
        every_n_epochs=2,
        log_initial=False,
        on_error="raise",
    )
    model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {"activations/conv_b", "json/activations/conv_b"}
    rec = run["activations/conv_b"][0]
    assert (
        rec.step == 2 and len(rec.value) == 2 and rec.value[0].shape == (2 * 29 + 1, 2 * 29 + 1, 3)
    )
    assert run["json/activations/conv_b"][0].value["channels"] == [0, 1, 2]


@pytest.mark.parametrize(
    "probe, layers, message",
    [
        (
            np.zeros((2, 8, 8, 3), np.float32),
            None,
            r"probe images have shape \(2, 8, 8, 3\); model .* expects \(N, 16, 16, 3\)",
        ),
        (np.zeros((2, 16, 16, 1), np.float32), None, r"expects \(N, 16, 16, 3\)"),
        (np.array([["x"]]), None, r"dtype <U1; pass real numbers"),
        (
            np.zeros((2, 16, 16, 3), np.float32),
            ["dense"],
            r"'dense' \(Dense\) outputs shape \(None, 2\)",
        ),
        (np.zeros((2, 16, 16, 3), np.float32), ["conv_z"], r"No layer named 'conv_z'"),
    ],
)
def test_bad_probe_or_layers_fail_before_the_first_epoch(tmp_path, data, probe, layers, message):
    epochs = EpochsSeen()
    cb = ActivationMapsCallback(str(tmp_path), probe, layers=layers)
    with pytest.raises(ValueError, match=message):
        small_cnn().fit(*data, epochs=2, verbose=0, callbacks=[epochs, cb])
    assert epochs.begun == []
    assert not os.path.exists(tmp_path / "cnnvis")


def test_constructor_validation():
    with pytest.raises(ValueError, match="needs probe images"):
        ActivationMapsCallback("x", None)
    with pytest.raises(ValueError, match="order must be one of"):
        ActivationMapsCallback("x", np.zeros((1, 4, 4, 1)), order="max")
    with pytest.raises(ValueError, match="normalize must be one of"):
        ActivationMapsCallback("x", np.zeros((1, 4, 4, 1)), normalize="all")
    with pytest.raises(ValueError, match="max_channels must be >= 1"):
        ActivationMapsCallback("x", np.zeros((1, 4, 4, 1)), max_channels=0)
