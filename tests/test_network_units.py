"""unit_breakdown: the arithmetic behind a unit reproduces the value Keras computed, for every unit
of every layer type; windows, terms and the rest are exact on a hand-computed example."""

import keras
import numpy as np
import pytest

from keras_cnnvis.network import network_trace
from keras_cnnvis.network.units import activation_of, unit_breakdown

L = keras.layers


def test_hand_computed_convolution_unit():
    i = keras.Input((4, 4, 1))
    conv = L.Conv2D(1, 2, activation="relu", name="conv")
    model = keras.Model(i, conv(i))
    conv.kernel.assign(np.ones((2, 2, 1, 1), np.float32))
    conv.bias.assign([0.5])
    x = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    d = unit_breakdown(network_trace(model, x), "conv", 0, (1, 2))
    np.testing.assert_array_equal(d["terms"]["windows"], [[[6, 7], [10, 11]]])
    np.testing.assert_array_equal(d["terms"]["kernels"], np.ones((1, 2, 2)))
    assert d["terms"]["sums"].tolist() == [34.0] and d["bias"] == 0.5
    assert d["pre_activation"] == 34.5 and d["value"] == 34.5 and d["rest"] is None
    assert d["op"] == "convolution" and d["activation"] == "relu"


def test_same_padding_strides_and_dilation_read_the_right_window():
    i = keras.Input((5, 6, 1))
    conv = L.Conv2D(1, 3, strides=2, padding="same", use_bias=False, name="conv")
    model = keras.Model(i, conv(i))
    conv.kernel.assign(np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1))
    x = np.arange(30, dtype=np.float32).reshape(5, 6, 1) + 1
    records = network_trace(model, x)
    # out 3x3; padding rows: total (3-1)*2+3-5 = 2 -> 1 on top; cols: (3-1)*2+3-6 = 1 -> 0 left
    d = unit_breakdown(records, "conv", 0, (0, 0))
    window = np.zeros((3, 3))
    window[1:, :] = x[0:2, 0:3, 0]
    np.testing.assert_array_equal(d["terms"]["windows"][0], window)
    assert d["pre_activation"] == pytest.approx(float(records[1].output[0, 0, 0]), abs=1e-4)


def _zoo():
    """A model with every layer type the breakdown explains."""
    i = keras.Input((9, 10, 4), name="x")
    a = L.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_s2")(i)
    b = L.Conv2D(6, 3, dilation_rate=2, padding="valid", activation="gelu", name="conv_dil")(i)
    g = L.Conv2D(6, (2, 3), groups=2, padding="same", activation="tanh", name="grouped")(i)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(i)
    sep = L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same", name="separable")(i)
    bn = L.BatchNormalization(name="bn")(g)
    act = L.Activation("swish", name="act")(bn)
    relu = L.ReLU(max_value=0.5, negative_slope=0.1, name="relu")(act)
    mp = L.MaxPooling2D(3, 2, padding="same", name="maxpool")(relu)
    ap = L.AveragePooling2D(3, 2, padding="same", name="avgpool")(sep)
    s = mp + a  # an operation
    gate = L.Reshape((1, 1, 6), name="gate_shape")(L.GlobalAveragePooling2D(name="gap")(s))
    se = L.Multiply(name="se")([s, L.Activation("sigmoid", name="gate")(gate)])
    cat = L.Concatenate(name="cat")([se, ap, L.Conv2D(2, 1, name="c1")(dw[:, ::2, ::2])])
    gmp = L.GlobalMaxPooling2D(name="gmp")(cat)
    dense = L.Dense(4, activation="softmax", name="dense")(gmp)
    model = keras.Model(i, [dense, b])
    rng = np.random.default_rng(0)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape).astype(np.float32))
        else:
            w.assign(rng.normal(0, 0.4, w.shape).astype(np.float32))
    return model


def test_every_unit_of_every_layer_type_reproduces_the_keras_value():
    model = _zoo()
    x = np.random.default_rng(1).normal(size=(9, 10, 4)).astype(np.float32)
    records = network_trace(model, x)
    types = set()
    rng = np.random.default_rng(5)
    for r in records[1:]:
        if r.type in ("Reshape", "GetItem"):
            continue
        shape = r.output.shape
        units = list(np.ndindex(shape))
        corners = [u for u in units if all(i in (0, n - 1) for i, n in zip(u, shape))]
        picks = corners + [units[i] for i in rng.choice(len(units), min(40, len(units)), False)]
        for index in picks:
            d = unit_breakdown(records, r.path, index[-1], index[:-1], top=3)
            if d.get("activation") == "softmax":
                e = np.exp(d["logits"] - d["logits"].max())
                computed = float(e[index[-1]] / e.sum())
            elif "pre_activation" in d:
                terms = d["terms"]
                total = float(np.sum(terms["sums"])) + (d["rest"] or {"sum": 0.0})["sum"]
                assert d["pre_activation"] == pytest.approx(total + d["bias"], abs=1e-9)
                computed = float(activation_of(r.layer, np.array([d["pre_activation"]]))[0])
            elif "result" in d:
                computed = d["result"]
            else:  # an elementwise layer applied to the input value
                one = np.full((1,) * (len(shape) + 1), d["x"], np.float32)
                computed = float(np.asarray(r.layer(one)).ravel()[0])
            assert computed == pytest.approx(float(r.output[index]), abs=2e-5), (r.path, index)
            types.add(d["op"])
    assert types == {
        "convolution", "dense", "max pooling", "mean pooling", "global max pooling",
        "global mean pooling", "batch normalization", "sum", "product", "concatenate",
        "elementwise",
    }  # fmt: skip


def test_top_terms_are_the_largest_and_the_rest_is_their_complement():
    model = _zoo()
    x = np.random.default_rng(2).normal(size=(9, 10, 4)).astype(np.float32)
    records = network_trace(model, x)
    full = unit_breakdown(records, "separable", 3, (4, 5), top=None)
    some = unit_breakdown(records, "separable", 3, (4, 5), top=2)
    assert len(full["terms"]["channels"]) == 4 and full["rest"] is None
    sums = full["terms"]["sums"]
    assert list(np.abs(sums)) == sorted(np.abs(sums), reverse=True)
    assert some["terms"]["channels"] == full["terms"]["channels"][:2]
    assert some["rest"]["count"] == 2
    assert some["rest"]["sum"] == pytest.approx(float(sums[2:].sum()), abs=1e-12)
    assert some["pre_activation"] == pytest.approx(full["pre_activation"], abs=1e-12)
    # Dense: value x weight per input, the logits of every class for the softmax.
    dense = unit_breakdown(records, "dense", 1, (), top=None)
    gmp = records[[r.path for r in records].index("gmp")].output
    kernel, bias = (np.asarray(w) for w in model.get_layer("dense").weights)
    np.testing.assert_allclose(dense["logits"], gmp @ kernel + bias, rtol=1e-6, atol=1e-6)
    order = dense["terms"]["channels"]
    np.testing.assert_allclose(dense["terms"]["values"], gmp[order], rtol=1e-7)
    np.testing.assert_allclose(dense["terms"]["weights"], kernel[order, 1], rtol=1e-7)


def test_merges_read_each_input_and_concatenate_finds_its_source():
    model = _zoo()
    x = np.random.default_rng(3).normal(size=(9, 10, 4)).astype(np.float32)
    records = network_trace(model, x)
    by = {r.path: r for r in records}
    add = next(r for r in records if r.type == "Add")
    d = unit_breakdown(records, add.path, 2, (1, 3))
    assert [t["input"] for t in d["terms"]] == add.inputs
    assert d["result"] == pytest.approx(sum(by[p].output[1, 3, 2] for p in add.inputs), abs=1e-6)
    se = unit_breakdown(records, "se", 4, (2, 0))
    assert se["terms"][1]["value"] == pytest.approx(float(by["gate"].output[0, 0, 4]))
    cat = unit_breakdown(records, "cat", 6 + 5 + 1, (1, 1))
    assert cat["input"] == "c1" and cat["channel"] == 1


def test_bad_units_are_refused():
    model = _zoo()
    records = network_trace(model, np.zeros((9, 10, 4), np.float32))
    with pytest.raises(ValueError, match="No record 'nope'"):
        unit_breakdown(records, "nope", 0, (0, 0))
    with pytest.raises(ValueError, match="Position"):
        unit_breakdown(records, "conv_s2", 0, (5, 0))
    with pytest.raises(ValueError, match="Position"):
        unit_breakdown(records, "dense", 0, (0, 0))
    with pytest.raises(ValueError, match="Channel 6"):
        unit_breakdown(records, "conv_s2", 6, (0, 0))
