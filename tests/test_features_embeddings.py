"""Feature extraction: which tensor is "the features", the one extractor (full pass with the
outputs, or a truncated pass for flat vectors), pooling of spatial maps, checked against
hand-computed features of fixed-weight models of every kind."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis.features.embeddings import (
    LayerFeatures,
    extract_features,
    feature_layer,
    flatten_features,
    penultimate_layer,
)
from keras_cnnvis.features.neighbors import FeatureFunction
from keras_cnnvis.model import wrap_calls

SHAPE = (6, 6, 2)


# -- models with known weights -------------------------------------------------------------


def _set(layer, kernel, bias):
    layer.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])


def _weights(rng):
    return {
        "conv": (rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)),
        "feat": (rng.normal(size=(4, 5)), rng.normal(size=5)),
        "out": (rng.normal(size=(5, 3)), rng.normal(size=3)),
    }


def _layers():
    return (
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(5, activation="relu", name="feat"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    )


def functional():
    conv, gap, feat, out = _layers()
    i = keras.Input(SHAPE)
    return keras.Model(i, out(feat(gap(conv(i)))))


def functional_dropout():
    conv, gap, feat, out = _layers()
    i = keras.Input(SHAPE)
    x = keras.layers.Dropout(0.5, name="drop")(feat(gap(conv(i))))
    return keras.Model(i, out(x))


def sequential():
    return keras.Sequential([keras.Input(SHAPE), *_layers()])


def nested():
    conv, gap, feat, out = _layers()
    base = keras.Sequential([keras.Input(SHAPE), conv, gap, feat], name="base")
    i = keras.Input(SHAPE)
    return keras.Model(i, out(base(i)))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv, self.gap, self.feat, self.out = _layers()

    def call(self, x):
        return self.out(self.feat(self.gap(self.conv(x))))


def subclassed():
    model = Subclassed()
    model(np.zeros((1, *SHAPE), np.float32))
    return model


KINDS = {
    "functional": (functional, "feat", "output"),
    "dropout": (functional_dropout, "drop", "output"),
    "sequential": (sequential, "feat", "output"),
    "nested": (nested, "base", "output"),  # the nested model outputs the features
    "subclassed": (subclassed, "out", "input"),
}


def _with_weights(make, seed=0):
    model = make()
    weights = _weights(np.random.default_rng(seed))
    for info_name, (k, b) in weights.items():
        layer = next(l for l in _all_layers(model) if l.name == info_name)
        _set(layer, k, b)
    return model, weights


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _manual_features(x, weights):
    """relu(conv) -> mean over space -> relu(dense): the input of the last Dense, by hand."""
    k, b = weights["conv"]
    n, h, w, _ = x.shape
    maps = np.zeros((n, h - 2, w - 2, k.shape[-1]))
    for i in range(h - 2):
        for j in range(w - 2):
            patch = x[:, i : i + 3, j : j + 3, :]
            maps[:, i, j, :] = np.einsum("nhwc,hwcf->nf", patch, k) + b
    pooled = np.maximum(maps, 0).mean(axis=(1, 2))
    fk, fb = weights["feat"]
    return np.maximum(pooled @ fk + fb, 0), np.maximum(maps, 0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((10, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_default_features_are_the_input_of_the_last_dense_layer(kind, images):
    make, path, io = KINDS[kind]
    model, weights = _with_weights(make)
    info, got_io = feature_layer(model)
    assert (info.path, got_io) == (path, io)
    expected, _ = _manual_features(images.astype(np.float64), weights)
    feats, outputs = extract_features(model, images, batch_size=3, return_outputs=True)
    assert feats.dtype == np.float32 and feats.shape == (10, 5)
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs, model(images).numpy(), rtol=1e-5, atol=1e-6)


def test_features_follow_the_live_weights(images):
    model, weights = _with_weights(functional)
    source = LayerFeatures(model)
    before, _ = source(images)
    _set(model.get_layer("feat"), weights["feat"][0] * 2, weights["feat"][1] * 2)
    after, _ = source(images)
    np.testing.assert_allclose(after, 2 * before, rtol=1e-5, atol=1e-6)


def test_spatial_layer_is_pooled_with_a_warning(images):
    model, weights = _with_weights(functional)
    _, maps = _manual_features(images.astype(np.float64), weights)
    with pytest.warns(
        UserWarning,
        match=r"Layer 'conv' outputs spatial maps of shape \(4, 4, 4\); keras-cnnvis global-average-pools them to 4 features",
    ):
        avg = extract_features(model, images, layer="conv")
    np.testing.assert_allclose(avg, maps.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="global-max-pools"):
        mx = extract_features(model, images, layer="conv", spatial="max")
    np.testing.assert_allclose(mx, maps.max(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="flattens them to 64 features"):
        flat = extract_features(model, images, layer="conv", spatial="flatten")
    np.testing.assert_allclose(flat, maps.reshape(10, -1), rtol=1e-4, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_features(model, images, layer="conv", warn=False)
        extract_features(model, images)  # flat: no warning


def test_dataset_input_equals_numpy(images):
    model, _ = _with_weights(functional)
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(10))).batch(4)
    np.testing.assert_allclose(
        extract_features(model, ds), extract_features(model, images), rtol=1e-6
    )


def test_feature_errors():
    no_dense = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Conv2D(2, 3), keras.layers.Flatten()]
    )
    with pytest.raises(ValueError, match="has no Dense layer.*layer='last_conv'"):
        feature_layer(no_dense)
    model, _ = _with_weights(functional)
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        extract_features(model, np.zeros((2, *SHAPE)), layer="nope")
    with pytest.raises(ValueError, match="spatial must be one of"):
        extract_features(model, np.zeros((2, *SHAPE)), spatial="mean")
    with pytest.raises(ValueError, match="The images batch is empty"):
        extract_features(model, np.zeros((0, *SHAPE)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        flatten_features(np.zeros(3))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_extractor_gives_flat_vectors_without_running_the_head(kind, images):
    make, path, io = KINDS[kind]
    model, weights = _with_weights(make)
    expected, maps = _manual_features(images.astype(np.float64), weights)
    head = next(l for l in _all_layers(model) if l.name == "out")
    calls = []

    def count(layer, call):
        def counted(*args, **kwargs):
            calls.append(layer.name)
            return call(*args, **kwargs)

        return counted

    source = LayerFeatures(model, batch_size=4)
    with wrap_calls([head], count):
        flat = source.vectors(images)  # traced here: the head is not part of the graph
        assert calls == []
        source(images)  # the full pass runs the head too, for the outputs
        assert calls
    np.testing.assert_allclose(flat, expected, rtol=1e-4, atol=1e-5)
    # The neighbours' name for it is the same extractor, described as the Dense input.
    embed = FeatureFunction(model, batch_size=4)
    assert isinstance(embed, LayerFeatures) and (embed.info.path, embed.io) == (path, io)
    assert embed.description == "out:input" and penultimate_layer(model).name == "out"
    np.testing.assert_allclose(embed(images), flat, rtol=1e-6, atol=1e-7)
    conv = FeatureFunction(model, "conv")
    assert conv.description == conv.info.path and conv.info.name == "conv"
    np.testing.assert_allclose(conv(images), maps.reshape(10, -1), rtol=1e-4, atol=1e-5)
