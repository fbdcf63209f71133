"""What the Network page reads: exact float encoding, full and bounded records, the channel
selection, class probabilities, the folding into blocks and the thumbnail atlas."""

import keras
import numpy as np
import pytest

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.network import NetworkTracer
from keras_cnnvis.network.records import (
    class_probabilities,
    decode,
    encode,
    layer_payload,
    network_snapshot,
    overview_payload,
    segments,
)
from keras_cnnvis.rendering.network import network_atlas, symmetric_bytes, thumbnail

L = keras.layers


@pytest.fixture(scope="module")
def demo():
    model = build_demo_model((32, 32, 3))
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    return model, NetworkTracer(model), images


def test_encoding_is_exact_float32():
    a = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
    a[0, 0, 0] = -np.inf
    e = encode(a)
    assert e["dtype"] == "float32" and e["shape"] == [3, 4, 5]
    assert len(e["data"]) == 4 * a.size * 4 // 3  # base64 of 240 bytes
    np.testing.assert_array_equal(decode(e), a)


def test_full_mode_logs_every_value_and_weight(demo):
    model, tracer, images = demo
    snap = network_snapshot(tracer, images, mode="auto")
    assert snap.mode == "full"
    traces = tracer(images)
    for k, record in enumerate(snap.records):
        payload = layer_payload(snap, k)
        assert payload["mode"] == "full" and payload["path"] == record.path
        for p in range(2):
            np.testing.assert_array_equal(decode(payload["outputs"][p]), traces[p][k].output)
        assert snap.shown[record.path].tolist() == list(range(record.output.shape[-1]))
    conv2 = layer_payload(snap, 5)
    np.testing.assert_array_equal(
        decode(conv2["weights"]["kernel"]), model.get_layer("conv2").kernel
    )
    assert sorted(layer_payload(snap, 2)["weights"]) == [
        "beta",
        "gamma",
        "moving_mean",
        "moving_variance",
    ]


def test_units_mode_shows_the_most_active_channels_and_their_peak_units(demo):
    model, tracer, images = demo
    snap = network_snapshot(tracer, images, mode="units", max_channels=3, top=2)
    traces = tracer(images)
    k = 5  # conv2
    outs = np.stack([t[k].output for t in traces])
    activity = np.abs(outs).mean(axis=(0, 1, 2))
    assert snap.shown["conv2"].tolist() == np.argsort(-activity, kind="stable")[:3].tolist()
    payload = layer_payload(snap, k)
    assert payload["mode"] == "units" and len(payload["units"]) == 2
    for p in range(2):
        for c, unit in zip(snap.shown["conv2"], payload["units"][p]):
            m = np.abs(outs[p, :, :, c])
            assert tuple(unit["position"]) == np.unravel_index(np.argmax(m), m.shape)
            assert unit["channel"] == c and unit["value"] == pytest.approx(
                outs[p][tuple(unit["position"]) + (c,)]
            )
            sums = decode(unit["terms"]["sums"])
            assert len(sums) == 2 and unit["rest"]["count"] == 14
            total = float(sums.sum()) + unit["rest"]["sum"] + unit["bias"]
            assert total == pytest.approx(
                unit["pre_activation"], abs=1e-6
            )  # sums logged as float32
    assert layer_payload(snap, 0)["units"] == [[], []]  # the input has no arithmetic
    assert (
        snap.shown["predictions"].tolist()
        == np.argsort(-np.abs(np.stack([t[-1].output for t in traces])).mean(0), kind="stable")[
            :3
        ].tolist()
    )


def test_auto_mode_follows_the_size_limit(demo):
    _, tracer, images = demo
    values = sum(r.output.size for t in tracer(images) for r in t)
    values += sum(int(np.prod(w.shape)) for w in tracer.model.weights)
    assert network_snapshot(tracer, images, full_limit=values).mode == "full"
    assert network_snapshot(tracer, images, full_limit=values - 1).mode == "units"
    with pytest.raises(ValueError, match="mode must be one of"):
        network_snapshot(tracer, images, mode="all")
    with pytest.raises(ValueError, match="max_channels and top"):
        network_snapshot(tracer, images, max_channels=0)


def test_class_probabilities_of_every_head():
    np.testing.assert_allclose(class_probabilities(np.array([0.2, 0.8]), "softmax"), [0.2, 0.8])
    logits = np.array([1.0, 2.0, 4.0])
    e = np.exp(logits)
    np.testing.assert_allclose(class_probabilities(logits, "linear"), e / e.sum())
    np.testing.assert_allclose(class_probabilities(np.array([0.9]), "sigmoid"), [0.1, 0.9])
    np.testing.assert_allclose(class_probabilities(np.array([0.0]), "linear"), [0.5, 0.5])
    assert class_probabilities(np.zeros((2, 2, 3)), "softmax") is None


def test_overview_folds_residual_blocks_and_keeps_the_graph():
    i = keras.Input((16, 16, 3), name="x")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="stem")(i)
    for b in range(2):
        y = L.Conv2D(8, 3, padding="same", activation="relu", name=f"b{b}_conv1")(x)
        y = L.Conv2D(8, 3, padding="same", name=f"b{b}_conv2")(y)
        x = L.Activation("relu", name=f"b{b}_out")(L.Add(name=f"b{b}_add")([x, y]))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(i, L.Dense(3, activation="softmax", name="head")(x))
    tracer = NetworkTracer(model)
    images = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    snap = network_snapshot(tracer, images)
    n = len(snap.records)
    overview = overview_payload(tracer, snap, [None] * n, [None] * n, ["a", "b", "c"])
    block = {layer["path"]: layer["block"] for layer in overview["layers"]}
    assert tracer.anatomy.blocks == ["stem", "b0_out", "b1_out"]
    assert [block[p] for p in ("x", "stem", "b0_conv1", "b0_out", "b1_conv1", "b1_out", "gap", "head")] == [
        0, 0, 1, 1, 2, 2, 3, 3,
    ]  # fmt: skip
    assert segments(tracer) == [layer["block"] for layer in overview["layers"]]
    add = next(layer for layer in overview["layers"] if layer["path"] == "b1_add")
    assert sorted(add["inputs"]) == ["b0_out", "b1_conv2"] and add["shape"] == [16, 16, 8]
    assert overview["feature_map"] == "b1_out" and overview["mode"] == "full"
    probs = snap.traces[0][-1].output
    assert overview["probes"][0]["classes"] == np.argsort(-probs, kind="stable").tolist()
    head = overview["layers"][-1]
    np.testing.assert_allclose(head["values"][0], probs[head["channels"]], rtol=1e-7)


def test_atlas_places_each_thumbnail_where_its_block_says():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(2, 64, 48, 5)).astype(np.float32)
    small = rng.normal(size=(2, 4, 4, 20)).astype(np.float32)
    atlases, blocks, scales = network_atlas([big, None, small], size=16, width=120, max_cols=8)
    assert blocks[1] is None and scales[1] is None
    assert blocks[0]["tile"] == [16, 12] and blocks[2]["tile"] == [4, 4]
    assert blocks[2]["cols"] == 8 and atlases.shape[0] == 2 and atlases.shape[-1] == 1
    for maps, block, scale in ((big, blocks[0], scales[0]), (small, blocks[2], scales[2])):
        th, tw = block["tile"]
        for p in range(2):
            assert scale[p] == pytest.approx(float(np.abs(maps[p]).max()))
            expected = symmetric_bytes(thumbnail(maps[p], 16), scale[p])
            for i in range(maps.shape[-1]):
                r, c = divmod(i, block["cols"])
                top, left = block["y"] + r * (th + 1), block["x"] + c * (tw + 1)
                np.testing.assert_array_equal(
                    atlases[p, top : top + th, left : left + tw, 0], expected[..., i]
                )
    # A 64x48 map becomes 16x12 by 4x4 area means.
    np.testing.assert_allclose(thumbnail(big[0], 16)[0, 0], big[0, :4, :4].mean((0, 1)), atol=1e-6)
    assert symmetric_bytes(np.array([-2.0, 0.0, 1.0, 3.0]), 2.0).tolist() == [0, 128, 191, 255]
