"""model_head: the task of a model's output from its shape, final activation and loss, for the
heads people train (keras.io style), and single-output views of multi-output models."""

import keras
import numpy as np
import pytest

from keras_cnnvis import inputs
from keras_cnnvis.model.head import model_head, output_view

L = keras.layers


def classifier(units, activation, loss):
    i = keras.Input((8, 8, 3))
    h = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, name="conv")(i))
    model = keras.Model(i, L.Dense(units, activation=activation, name="out")(h))
    if loss is not None:
        model.compile("adam", loss)
    return model


def dense_model(channels, activation, loss):
    i = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu")(i)
    model = keras.Model(i, L.Conv2D(channels, 1, activation=activation, name="out")(h))
    model.compile("adam", loss)
    return model


BCE_LOGITS = keras.losses.BinaryCrossentropy(from_logits=True)


@pytest.mark.parametrize(
    "build, task, n_classes, activation",
    [
        (
            lambda: classifier(5, "softmax", "sparse_categorical_crossentropy"),
            "multiclass",
            5,
            "softmax",
        ),
        (
            lambda: classifier(
                5, None, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            ),
            "multiclass",
            5,
            "linear",
        ),
        (lambda: classifier(1, None, BCE_LOGITS), "binary", 2, "linear"),  # keras.io from scratch
        (lambda: classifier(1, "sigmoid", "binary_crossentropy"), "binary", 2, "sigmoid"),
        (lambda: classifier(1, None, None), "binary", 2, "linear"),  # not compiled: a logit
        (lambda: classifier(4, "sigmoid", "binary_crossentropy"), "multilabel", 4, "sigmoid"),
        (lambda: classifier(4, None, BCE_LOGITS), "multilabel", 4, "linear"),
        (lambda: classifier(1, None, "mse"), "regression", None, "linear"),
        (lambda: classifier(3, None, keras.losses.Huber()), "regression", None, "linear"),
        (
            lambda: dense_model(3, "softmax", "sparse_categorical_crossentropy"),
            "segmentation",
            3,
            "softmax",
        ),
        (lambda: dense_model(1, "sigmoid", "binary_crossentropy"), "segmentation", 2, "sigmoid"),
        (lambda: dense_model(1, None, "mae"), "dense", None, "linear"),
    ],
)
def test_heads(build, task, n_classes, activation):
    head = model_head(build())
    assert (head.task, head.n_classes, head.activation) == (task, n_classes, activation)
    assert head.has_classes == (n_classes is not None)
    assert task in head.describe() or head.describe().split()[0] in head.describe()


def test_multi_output_models_explain_the_chosen_output():
    i = keras.Input((8, 8, 3))
    h = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, name="conv")(i))
    model = keras.Model(
        i, [L.Dense(1, name="size")(h), L.Dense(3, activation="softmax", name="kind")(h)]
    )
    model.compile("adam", ["mse", "sparse_categorical_crossentropy"])
    assert model_head(model).task == "regression"
    assert model_head(model, 1).task == "multiclass" and model_head(model, 1).n_classes == 3
    with pytest.raises(ValueError, match=r"has 2 output\(s\); output=2 does not exist"):
        model_head(model, 2)
    assert (model_head(model).activation, model_head(model, 1).activation) == ("linear", "softmax")
    view = output_view(model, 1)
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(view(x), model(x)[1], rtol=1e-6)
    assert view.get_layer("conv") is model.get_layer("conv")  # shared, sees training
    assert output_view(view) is view


def test_dense_outputs_give_per_pixel_classes_and_labels():
    probs = np.zeros((2, 3, 3, 4), np.float32)
    probs[..., 2] = 1.0
    probs[0, 1, 1] = [0, 0, 0, 2]
    classes = inputs.predicted_classes(probs, "softmax", dense=True)
    assert classes.shape == (2, 3, 3) and classes[0, 1, 1] == 3 and classes[1].max() == 2
    logits = np.array([[[[-1.0], [2.0]]]])
    assert inputs.predicted_classes(logits, "linear", dense=True).tolist() == [[[0, 1]]]
    masks = np.eye(3)[np.array([[[0, 1], [2, 2]]])]  # one-hot (1, 2, 2, 3)
    np.testing.assert_array_equal(inputs.pixel_labels(masks), [[[0, 1], [2, 2]]])
    np.testing.assert_array_equal(inputs.pixel_labels(masks[..., :1] * 0 + 1), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"size \(2, 2\) do not match the model's output maps"):
        inputs.pixel_labels(masks, size=(4, 4))
    assert inputs.is_pixel_labels(np.zeros((5, 4, 4)), 5) and not inputs.is_pixel_labels(
        np.zeros(5), 5
    )


def test_each_output_of_a_multi_output_model_is_read_with_its_own_activation():
    # Uncompiled, so only the activations tell a multi-label head from a multi-class one
    # and a sigmoid mask (threshold 0.5) from logits (threshold 0).
    i = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(i)
    mask = L.Conv2D(1, 1, activation="sigmoid", name="mask")(h)
    tags = L.Dense(5, activation="sigmoid", name="tags")(L.GlobalAveragePooling2D()(h))
    kind = L.Dense(3, activation="softmax", name="kind")(L.GlobalAveragePooling2D()(h))
    model = keras.Model(i, [mask, tags, kind])
    heads = [model_head(model, k) for k in range(3)]
    assert [(h.task, h.n_classes, h.activation) for h in heads] == [
        ("segmentation", 2, "sigmoid"),
        ("multilabel", 5, "sigmoid"),
        ("multiclass", 3, "softmax"),
    ]
