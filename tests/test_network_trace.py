"""network_trace: every record's output equals what Keras computes for that layer (a sub-model of
the same model, or the layers called by hand for a subclassed model), with the right graph."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.network import NetworkTracer, network_trace

L = keras.layers
TOL = 1e-5


def image(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def assert_matches_submodels(model, records, x, skip=()):
    """Each record of a top-level layer or operation equals keras.Model(input, its output)."""
    checked = 0
    for r in records[1:]:
        if "/" in r.path or r.path in skip:
            continue
        op = next(o for o in model.operations if o.name == r.path)
        ref = keras.Model(model.inputs[0], op.output)(x[None])
        np.testing.assert_allclose(r.output, np.asarray(ref)[0], atol=TOL, rtol=TOL)
        checked += 1
    return checked


def test_demo_cnn_records_every_layer_with_its_graph_and_config():
    model = build_demo_model((32, 32, 3))
    x = image((32, 32, 3))
    records = network_trace(model, x)
    paths = [r.path for r in records]
    assert paths == [
        "image", "conv1", "bn1", "relu1", "pool1", "conv2", "pool2", "conv3", "pool3",
        "conv4", "global_pool", "features", "predictions",
    ]  # fmt: skip
    assert [r.inputs for r in records[:3]] == [[], ["image"], ["conv1"]]
    assert records[0].type == "InputLayer" and np.array_equal(records[0].output, x)
    conv1, conv2 = records[1], records[5]
    assert conv1.config["kernel_size"] == [5, 5] and conv1.config["padding"] == "same"
    assert conv1.config["activation"] == "linear" and conv2.config["activation"] == "relu"
    assert records[4].config["pool_size"] == [2, 2] and records[4].config["strides"] == [2, 2]
    assert records[-1].config == {"units": 5, "activation": "softmax", "use_bias": True}
    assert all(r.output.dtype == np.float32 for r in records)
    assert records[-1].output.shape == (5,) and records[5].output.shape == (16, 16, 32)
    assert assert_matches_submodels(model, records, x) == 12


def test_nested_mobilenetv2_matches_inner_and_outer_submodels():
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = L.Rescaling(2.0, offset=-1.0, name="scale")(inputs)
    x = base(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, L.Dense(3, activation="softmax", name="head")(x))
    # Non-trivial BatchNorm statistics, so inference mode matters.
    rng = np.random.default_rng(1)
    for w in base.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape).astype(np.float32))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.1, w.shape).astype(np.float32))
    img = image((32, 32, 3), 2)
    records = network_trace(model, img)
    inner = [r for r in records if r.path.startswith(base.name + "/")]
    assert len(inner) == len([op for op in base.operations if not isinstance(op, L.InputLayer)])
    assert inner[0].inputs == ["scale"]  # the nested model reads the outer layer
    adds = [r for r in inner if r.type == "Add"]
    assert adds and all(len(r.inputs) == 2 for r in adds)
    scaled = np.asarray(keras.Model(model.inputs[0], model.get_layer("scale").output)(img[None]))
    for r in inner:
        op = next(o for o in base.operations if o.name == r.path.split("/", 1)[1])
        ref = np.asarray(keras.Model(base.inputs[0], op.output)(scaled))[0]
        np.testing.assert_allclose(r.output, ref, atol=TOL, rtol=TOL, err_msg=r.path)
    assert assert_matches_submodels(model, records, img, skip=(base.name,)) == 3


class Subclassed(keras.Model):
    """conv -> (tf.nn.relu inline) -> pool -> shared conv twice -> mean -> dense."""

    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = L.Conv2D(4, 3, padding="same", name="conv")
        self.pool = L.MaxPooling2D(name="pool")
        self.shared = L.Conv2D(4, 1, name="shared")
        self.gap = L.GlobalAveragePooling2D(name="gap")
        self.dense = L.Dense(2, name="dense")

    def call(self, x):
        x = self.pool(tf.nn.relu(self.conv(x)))
        x = self.shared(self.shared(x))
        return self.dense(self.gap(x))


def test_subclassed_model_matches_its_layers_called_by_hand():
    model = Subclassed()
    x = image((12, 12, 3), 3)
    model(x[None])
    records = network_trace(model, x)
    assert [r.path for r in records] == [
        "input",
        "conv",
        "pool",
        "shared",
        "shared#2",
        "gap",
        "dense",
    ]
    conv = model.conv(x[None])
    pooled = model.pool(tf.nn.relu(conv))
    once = model.shared(pooled)
    twice = model.shared(once)
    gap = model.gap(twice)
    expected = [x[None], conv, pooled, once, twice, gap, model.dense(gap)]
    for r, ref in zip(records, expected):
        np.testing.assert_allclose(r.output, np.asarray(ref)[0], atol=TOL, rtol=TOL)
    # The pool reads relu(conv), not conv: the value it received is kept with the record.
    assert records[2].input_value is not None
    np.testing.assert_allclose(records[2].input_value, np.maximum(records[1].output, 0), atol=TOL)
    assert records[4].inputs == ["shared"] and records[4].input_value is None


def test_residual_model_with_add_op_and_add_layer():
    i = keras.Input((10, 10, 3), name="x")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(i)
    b = L.Conv2D(4, 3, padding="same", name="conv_b")(a)
    s = a + b  # a Keras operation, not a layer
    c = L.Conv2D(4, 1, strides=2, name="proj")(s)
    d = L.Conv2D(4, 3, strides=2, padding="same", name="conv_d")(s)
    out = L.Add(name="merge")([c, d])
    model = keras.Model(i, L.GlobalMaxPooling2D(name="gmp")(out))
    x = image((10, 10, 3), 4)
    records = network_trace(model, x)
    by = {r.path: r for r in records}
    op = next(r for r in records if r.type == "Add" and r.path != "merge")
    assert sorted(op.inputs) == ["conv_a", "conv_b"]
    assert sorted(by["merge"].inputs) == ["conv_d", "proj"]
    assert by["proj"].inputs == [op.path] and by["proj"].config["strides"] == [2, 2]
    assert assert_matches_submodels(model, records, x) == 7


def test_concatenate_model():
    i = keras.Input((8, 8, 2), name="x")
    a = L.Conv2D(3, 3, padding="same", name="left")(i)
    b = L.Conv2D(5, 1, activation="tanh", name="right")(i)
    c = L.Concatenate(name="cat")([a, b])
    model = keras.Model(i, L.Conv2D(2, 3, name="after")(c))
    x = image((8, 8, 2), 5)
    records = network_trace(model, x)
    cat = records[[r.path for r in records].index("cat")]
    assert cat.inputs == ["left", "right"] and cat.output.shape == (8, 8, 8)
    assert cat.config == {"axis": -1}
    assert assert_matches_submodels(model, records, x) == 4


def test_tracer_traces_a_batch_and_follows_the_live_weights():
    model = build_demo_model((32, 32, 3))
    tracer = NetworkTracer(model)
    xs = np.stack([image((32, 32, 3), s) for s in range(3)])
    first = tracer(xs)
    assert len(first) == 3
    np.testing.assert_allclose(first[1][5].output, network_trace(model, xs[1])[5].output, atol=TOL)
    conv1 = model.get_layer("conv1")
    conv1.kernel.assign(conv1.kernel * 2.0)
    conv1.bias.assign(conv1.bias + 1.0)
    again = tracer(xs[:1])[0]
    np.testing.assert_allclose(again[1].output, 2 * first[0][1].output + 1.0, atol=1e-4, rtol=1e-5)


def test_bad_images_are_refused():
    model = build_demo_model((32, 32, 3))
    with pytest.raises(ValueError, match="takes one image"):
        network_trace(model, np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        network_trace(model, np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        network_trace(model, np.full((32, 32, 3), np.nan, np.float32))


def test_the_trace_cache_does_not_keep_models_alive():
    """network_trace keeps one tracer per model (no retrace on the next call) without keeping
    the model alive; a tracer built by hand keeps its own model."""
    import gc
    import weakref

    def small():
        return keras.Sequential(
            [keras.Input((8, 8, 3)), L.Conv2D(2, 3), L.GlobalAveragePooling2D(), L.Dense(2)]
        )

    model = small()
    first = network_trace(model, image((8, 8, 3)))
    again = network_trace(model, image((8, 8, 3)))
    np.testing.assert_array_equal(first[-1].output, again[-1].output)
    dropped = weakref.ref(model)
    del model, first, again
    gc.collect()
    assert dropped() is None
    tracer = NetworkTracer(small())
    gc.collect()
    assert tracer(image((1, 8, 8, 3)))[0][-1].output.shape == (2,)
