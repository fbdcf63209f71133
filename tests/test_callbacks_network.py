"""NetworkCallback in a real fit: the exact tags and steps, records that decode to what the model
computes after training, the thumbnails, the "network" monitor of CNNVisCallback, and the checks
before the first epoch."""

import numpy as np
import pytest

from callback_helpers import EpochsSeen, random_data, small_cnn
from eventfiles import read_run
from keras_cnnvis.callbacks import CNNVisCallback, NetworkCallback
from keras_cnnvis.network import input_name, network_trace
from keras_cnnvis.network.records import decode
from keras_cnnvis.rendering.network import symmetric_bytes, thumbnail

LAYERS = ["conv_a", "conv_b", "gap", "dense"]  # after the input (named by Keras: input_layer_<n>)


def test_fit_logs_every_layer_at_every_epoch_and_the_last_equals_the_model(tmp_path):
    x, y = random_data()
    model = small_cnn()
    paths = [input_name(model)] + LAYERS
    probe = x[:2]
    cb = NetworkCallback(str(tmp_path), probe, class_names=["no", "yes"], on_error="raise")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    layer_tags = {f"json/network/layer/{p}" for p in paths}
    assert set(run) == {"network/atlas", "network/input", "json/network/overview"} | layer_tags
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    overview = run["json/network/overview"][-1].value
    assert [layer["path"] for layer in overview["layers"]] == paths
    assert overview["mode"] == "full" and overview["n_probes"] == 2
    assert overview["class_names"] == ["no", "yes"] and overview["atlas"]["tag"] == "network/atlas"
    assert overview["layers"][2]["inputs"] == ["conv_a"]
    assert overview["layers"][1]["config"]["kernel_size"] == [5, 5]
    # After fit, the model computes exactly what the last record holds.
    for p in range(2):
        trace = network_trace(model, probe[p])
        for record in trace:
            logged = run[f"json/network/layer/{record.path}"][-1].value
            np.testing.assert_allclose(decode(logged["outputs"][p]), record.output, atol=1e-6)
        probs = overview["probes"][p]
        assert probs["classes"] == np.argsort(-trace[-1].output, kind="stable").tolist()
        np.testing.assert_allclose(
            probs["probabilities"], np.sort(trace[-1].output)[::-1], rtol=1e-6
        )
    kernel = decode(run["json/network/layer/conv_b"][-1].value["weights"]["kernel"])
    np.testing.assert_array_equal(kernel, model.get_layer("conv_b").kernel)
    # Thumbnails: one atlas per probe; conv_b's channel 3 where its block says.
    atlases = run["network/atlas"][-1].value
    assert len(atlases) == 2 and atlases[0].shape == tuple(overview["atlas"]["size"])
    conv_b = overview["layers"][2]
    block = conv_b["atlas"]
    th, tw = block["tile"]
    top, left = block["y"], block["x"] + 3 * (tw + block["pad"])
    maps = network_trace(model, probe[1])[2].output
    expected = symmetric_bytes(thumbnail(maps, 32), conv_b["scales"][1])[..., 3]
    np.testing.assert_allclose(atlases[1][top : top + th, left : left + tw], expected, atol=1)
    assert len(run["network/input"][0].value) == 2  # the probes themselves


def test_units_mode_logs_the_peak_units_of_the_most_active_channels(tmp_path):
    x, y = random_data()
    model = small_cnn()
    cb = NetworkCallback(
        str(tmp_path), x[:1], mode="units", max_channels=2, top=3, on_error="raise"
    )
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    overview = run["json/network/overview"][-1].value
    assert overview["mode"] == "units" and overview["top"] == 3
    conv_a = next(layer for layer in overview["layers"] if layer["path"] == "conv_a")
    assert len(conv_a["channels"]) == 2 and len(conv_a["activity"]) == 2
    units = run["json/network/layer/conv_a"][-1].value["units"][0]
    out = network_trace(model, x[0])[1].output
    for c, unit in zip(conv_a["channels"], units):
        assert unit["channel"] == c and len(unit["terms"]["channels"]) == 3
        assert unit["value"] == pytest.approx(float(out[tuple(unit["position"]) + (c,)]), abs=1e-6)


def test_network_monitor_of_cnnvis_callback_logs_two_probes_every_epoch(tmp_path):
    x, y = random_data()
    model = small_cnn()
    cb = CNNVisCallback(
        str(tmp_path), validation_data=(x, y), include=("network",), budget=None, on_error="raise"
    )
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert cb.names == ["network"]
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["json/network/overview"]] == [0, 1, 2]
    assert run["json/network/overview"][0].value["n_probes"] == 2
    assert len(run["network/input"][-1].value) == 2


def test_probes_that_do_not_fit_fail_before_the_first_epoch(tmp_path):
    x, y = random_data()
    model = small_cnn()
    seen = EpochsSeen()
    cb = NetworkCallback(str(tmp_path), np.zeros((2, 8, 8, 3), np.float32), on_error="raise")
    with pytest.raises(ValueError, match="probe images"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb, seen])
    assert seen.begun == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"probe": None}, "needs probe images"),
        ({"mode": "everything"}, "mode must be one of"),
        ({"max_channels": 0}, "max_channels must be an integer >= 1"),
        ({"top": 2.5}, "top must be an integer >= 1"),
        ({"thumbnail": -1}, "thumbnail must be an integer >= 1"),
    ],
)
def test_constructor_validation(tmp_path, kwargs, message):
    args = {"probe": np.zeros((1, 16, 16, 3), np.float32), **kwargs}
    with pytest.raises(ValueError, match=message):
        NetworkCallback(str(tmp_path), **args)
