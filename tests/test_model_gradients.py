"""Layer lookup, output capture and feature extraction on every kind of Keras model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis.gradients import (
    FeatureExtractor,
    capture_outputs,
    conv_layers,
    find_layer,
    iter_layers,
    patched,
)

SHAPE = (16, 16, 3)


def _layers():
    return [
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.Conv2D(5, 3, name="c2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, name="out"),
    ]


def functional():
    c1, c2, gap, out = _layers()
    i = keras.Input(SHAPE)
    return keras.Model(i, out(gap(c2(c1(i)))), name="func")


def sequential():
    return keras.Sequential([keras.Input(SHAPE), *_layers()], name="seq")


def nested():
    c1, c2, gap, out = _layers()
    base = keras.Sequential([keras.Input(SHAPE), c1, c2], name="base")
    i = keras.Input(SHAPE)
    return keras.Model(i, out(gap(base(i))), name="outer")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.c1, self.c2, self.gap, self.out = _layers()

    def call(self, x):
        return self.out(self.gap(self.c2(self.c1(x))))


def subclassed():
    model = Subclassed()
    model(np.zeros((1, *SHAPE), np.float32))
    return model


KINDS = {
    "functional": functional,
    "sequential": sequential,
    "nested": nested,
    "subclassed": subclassed,
}


def _manual(model, x):
    """A hand-written forward pass through the same layer objects."""
    get = lambda n: find_layer(model, n).layer  # noqa: E731
    a1 = get("c1")(x)
    a2 = get("c2")(a1)
    return np.asarray(a1), np.asarray(a2), np.asarray(get("out")(get("gap")(a2)))


@pytest.mark.parametrize("kind", list(KINDS))
def test_feature_extractor_matches_manual_forward_pass(kind):
    model = KINDS[kind]()
    x = np.random.default_rng(0).random((70, *SHAPE), dtype=np.float32)
    (a1, a2), out = FeatureExtractor(model, ["c1", "last_conv"], batch_size=32)(x)
    m1, m2, mout = _manual(model, x)
    assert a1.shape == (70, 14, 14, 4) and a2.shape == (70, 12, 12, 5)
    np.testing.assert_allclose(a1, m1, atol=1e-5)
    np.testing.assert_allclose(a2, m2, atol=1e-5)
    np.testing.assert_allclose(out, mout, atol=1e-5)
    np.testing.assert_allclose(out, np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_extractor_follows_weight_updates(kind):
    """No stale copy: changing the live weights changes what the extractor returns."""
    model = KINDS[kind]()
    x = np.ones((2, *SHAPE), np.float32)
    fe = FeatureExtractor(model, ["c1"])
    (before,), _ = fe(x)
    c1 = find_layer(model, "c1").layer
    c1.kernel.assign(c1.kernel * 0.0)
    c1.bias.assign(np.full(4, 0.25, np.float32))
    (after,), _ = fe(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, 0.25)


def test_paths_and_conv_layers_in_nested_model():
    model = nested()
    assert [i.path for i in iter_layers(model)] == ["base", "base/c1", "base/c2", "gap", "out"]
    assert [i.path for i in conv_layers(model)] == ["base/c1", "base/c2"]
    assert find_layer(model, "c2").path == "base/c2"
    assert find_layer(model, "base/c1").layer is model.get_layer("base").get_layer("c1")
    assert find_layer(model, "last_conv").path == "base/c2"
    assert find_layer(model, -1).path == "out"


def test_unknown_layer_lists_conv_layers():
    with pytest.raises(ValueError) as err:
        find_layer(nested(), "conv9")
    msg = str(err.value)
    assert "No layer named 'conv9'" in msg
    assert "'base/c1' (Conv2D), 'base/c2' (Conv2D)" in msg


def test_ambiguous_name_asks_for_a_path():
    inner1 = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(2, 3, name="c")], name="a")
    inner2 = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(2, 3, name="c")], name="b")
    i = keras.Input(SHAPE)
    model = keras.Model(i, keras.layers.Concatenate()([inner1(i), inner2(i)]))
    with pytest.raises(ValueError, match=r"ambiguous.*\['a/c', 'b/c'\]"):
        find_layer(model, "c")
    assert find_layer(model, "b/c").layer is inner2.layers[-1]


def test_no_conv_layer_error():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    with pytest.raises(ValueError, match="has no 2-D convolution layer"):
        find_layer(model, "last_conv")


def test_capture_gives_hidden_gradients_and_is_undone():
    model = functional()
    x = tf.constant(np.random.default_rng(1).random((3, *SHAPE), dtype=np.float32))
    c2 = find_layer(model, "c2").layer
    with tf.GradientTape() as tape:
        with capture_outputs(model, ["c2"]) as cap:
            out = model(x)
        score = tf.reduce_sum(out[:, 0])
    grads = tape.gradient(score, cap["c2"])
    # score = sum_n (mean_hw(A_n) @ W[:, 0] + b0): dscore/dA = W[:, 0] / (12*12) everywhere.
    w = np.asarray(find_layer(model, "out").layer.kernel)[:, 0]
    np.testing.assert_allclose(
        np.asarray(grads), np.broadcast_to(w / 144.0, (3, 12, 12, 5)), rtol=1e-5
    )
    assert "call" not in vars(c2)


def test_capture_is_undone_when_the_forward_pass_raises():
    model = functional()
    c1 = find_layer(model, "c1").layer
    with pytest.raises(Exception):
        with capture_outputs(model, ["c1"]):
            model(np.zeros((1, 5, 5, 7), np.float32))
    assert "call" not in vars(c1)
    np.testing.assert_allclose(np.asarray(model(np.zeros((1, *SHAPE), np.float32))).shape, (1, 3))


def test_patched_restores_attribute_even_on_error():
    layer = keras.layers.Conv2D(2, 3, activation="relu")
    original = layer.activation
    with pytest.raises(RuntimeError):
        with patched(layer, "activation", lambda t: t):
            assert layer.activation is not original
            raise RuntimeError("boom")
    assert layer.activation is original


def test_extractors_trace_once_for_every_batch_size():
    from keras_cnnvis.embeddings import LayerFeatures
    from keras_cnnvis.neighbors import FeatureFunction

    model = functional()
    x = np.random.default_rng(0).normal(size=(150, *SHAPE)).astype(np.float32)
    extractor = FeatureExtractor(model, ["c2"], batch_size=64)
    extractor(x[:1])  # a one-image check, then batches of 64, 64 and 22
    (c2,), out = extractor(x)
    assert extractor._fn.function.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(out, model(x), rtol=1e-5, atol=1e-5)
    assert c2.shape == (150, 12, 12, 5)
    sub = subclassed()  # no layer graph: the input of its last Dense layer is read
    sub.set_weights(model.get_weights())
    features = LayerFeatures(sub)
    assert features.io == "input"
    raw, outs = features(x, outputs=True)
    assert features._both._fn.function.experimental_get_tracing_count() == 1  # one pass
    np.testing.assert_allclose(outs, model(x), rtol=1e-5, atol=1e-5)  # ... for both
    np.testing.assert_allclose(raw, c2.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    # The eager check before training gives the same numbers without tracing anything.
    raw2, outs2 = features.probe(x[:2])
    np.testing.assert_allclose(raw2, raw[:2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs2, outs[:2], rtol=1e-5, atol=1e-5)
    assert features._both._fn.function.experimental_get_tracing_count() == 1
    space = FeatureFunction(model, "c2")
    vectors = space(x)
    assert space._fn.function.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(vectors, c2.reshape(150, -1), rtol=1e-5, atol=1e-5)
