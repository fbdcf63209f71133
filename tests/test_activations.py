"""Activation maps core (keras_cnnvis.activations): exact feature maps of a hand-set model,
channel order and probe validation."""

import keras
import numpy as np
import pytest

from keras_cnnvis import activation_maps
from keras_cnnvis.activations import check_probe


def fixed_model():
    """1x1 conv with weights (1, -1, 2), biases (0, 0, -5), ReLU; then 2x2 max pooling."""
    i = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(3, 1, activation="relu", name="conv")
    x = conv(i)
    out = keras.layers.MaxPooling2D(name="pool")(x)
    model = keras.Model(i, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(out)))
    conv.kernel.assign(np.array([1.0, -1.0, 2.0], np.float32).reshape(1, 1, 1, 3))
    conv.bias.assign(np.array([0.0, 0.0, -5.0], np.float32))
    return model


ARANGE = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)


def test_maps_are_the_hand_computed_layer_outputs_in_index_order():
    maps = activation_maps(fixed_model(), ARANGE, ["conv", "pool"])
    assert list(maps) == ["conv", "pool"]
    conv = maps["conv"]
    x = ARANGE[0, ..., 0]
    assert conv.channels == [0, 1, 2] and conv.n_channels == 3 and conv.maps.dtype == np.float32
    np.testing.assert_allclose(conv.maps[0, ..., 0], x)
    np.testing.assert_allclose(conv.maps[0, ..., 1], 0.0)
    np.testing.assert_allclose(conv.maps[0, ..., 2], np.maximum(2 * x - 5, 0))
    # Means: 7.5, 0 and (1 + 3 + ... + 25) / 16 = 169 / 16.
    np.testing.assert_allclose(conv.mean, [7.5, 0.0, 169 / 16])
    np.testing.assert_allclose(maps["pool"].maps[0, ..., 0], [[5, 7], [13, 15]])


def test_mean_order_is_over_all_images_and_max_channels_keeps_the_strongest():
    images = np.concatenate([ARANGE, 15 - ARANGE])  # second image: values reversed
    conv = activation_maps(fixed_model(), images, "conv", order="mean", max_channels=2)["conv"]
    # Both images have the same value set, so the means match the single-image ones.
    assert conv.channels == [2, 0]
    assert conv.maps.shape == (2, 4, 4, 2)
    np.testing.assert_allclose(conv.maps[1, ..., 1], 15 - ARANGE[0, ..., 0])
    np.testing.assert_allclose(
        conv.maps[1, ..., 0], np.maximum(2 * (15 - ARANGE[0, ..., 0]) - 5, 0)
    )


def test_nested_model_layers_by_path():
    inner = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1, name="c")], name="inner"
    )
    i = keras.Input((4, 4, 1))
    model = keras.Model(i, keras.layers.GlobalAveragePooling2D()(inner(i)))
    inner.get_layer("c").kernel.assign(np.array([[[[1.0, 3.0]]]], np.float32))
    inner.get_layer("c").bias.assign(np.zeros(2, np.float32))
    maps = activation_maps(model, ARANGE, "inner/c")["inner/c"]
    np.testing.assert_allclose(maps.maps[0, ..., 1], 3 * ARANGE[0, ..., 0])


@pytest.mark.parametrize(
    "probe, message",
    [
        (
            np.zeros((2, 5, 4, 1), np.float32),
            r"shape \(2, 5, 4, 1\); model .* expects \(N, 4, 4, 1\)",
        ),
        (np.zeros((2, 4, 4, 3), np.float32), r"expects \(N, 4, 4, 1\)"),
        (np.zeros((4, 4), np.float32), r"expected a batch of images"),
        (np.zeros((0, 4, 4, 1), np.float32), r"batch is empty"),
        (np.array([["a"]]), r"dtype <U1; pass real numbers"),
        (np.full((1, 4, 4, 1), np.nan, np.float32), r"NaN or inf"),
        (None, r"No probe images given"),
    ],
)
def test_bad_probes_are_rejected_with_the_expected_shape(probe, message):
    with pytest.raises(ValueError, match=message):
        check_probe(fixed_model(), probe)


def test_single_image_and_integer_pixels_are_accepted():
    out = check_probe(fixed_model(), np.arange(16, dtype=np.uint8).reshape(4, 4, 1))
    assert out.shape == (1, 4, 4, 1) and out.dtype == np.float32 and out[0, 3, 3, 0] == 15


def test_errors_for_layers_without_feature_maps_and_unknown_layers():
    model = fixed_model()
    with pytest.raises(
        ValueError, match=r"'head' \(Dense\) outputs shape \(None, 2\); activation maps need a 4-D"
    ):
        activation_maps(model, ARANGE, "head")
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        activation_maps(model, ARANGE, "nope")
    with pytest.raises(ValueError, match="order must be one of"):
        activation_maps(model, ARANGE, "conv", order="max")
