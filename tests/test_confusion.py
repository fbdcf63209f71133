"""Confusion matrix core (keras_cnnvis.confusion): hand-counted on a fixed-weight model,
scikit-learn as a peer on the trained demo, clear errors for bad input.
"""

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from keras_cnnvis.confusion import (
    class_names_for,
    classes_from_outputs,
    confusion_matrix,
    count_confusions,
    per_class_accuracy,
)

L = keras.layers


def argmax_model():
    """Predicts the brightest of a 1x1 image's three channels (identity Dense + softmax)."""
    i = keras.Input((1, 1, 3))
    x = L.Flatten()(i)
    dense = L.Dense(3, activation="softmax", name="out")
    model = keras.Model(i, dense(x), name="argmax")
    dense.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def pixels(preds):
    x = np.zeros((len(preds), 1, 1, 3), np.float32)
    x[np.arange(len(preds)), 0, 0, preds] = 1.0
    return x


def test_hand_counted_matrix_and_per_class_accuracy():
    preds = [0, 0, 1, 2, 2, 2, 1]
    labels = np.array([0, 1, 1, 2, 2, 0, 1])
    m = confusion_matrix(argmax_model(), pixels(preds), labels, batch_size=3)
    # true 0: predicted 0, 2; true 1: predicted 0, 1, 1; true 2: predicted 2, 2.
    np.testing.assert_array_equal(m, [[1, 0, 1], [1, 2, 0], [0, 0, 2]])
    assert m.dtype == np.int64
    np.testing.assert_allclose(per_class_accuracy(m), [0.5, 2 / 3, 1.0], rtol=1e-6)
    # One-hot labels give the same matrix.
    np.testing.assert_array_equal(
        confusion_matrix(argmax_model(), pixels(preds), np.eye(3)[labels]), m
    )


def test_class_without_examples_has_nan_accuracy():
    m = count_confusions([0, 0, 2], [0, 1, 2], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    acc = per_class_accuracy(m)
    assert acc[0] == 0.5 and np.isnan(acc[1]) and acc[2] == 1.0


def test_outputs_to_classes():
    classes, n = classes_from_outputs(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]))
    assert n == 3 and classes.tolist() == [1, 0]
    classes, n = classes_from_outputs(np.array([[0.2], [0.9], [0.5]]))
    assert n == 2 and classes.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"predicted classes need class scores \(N, classes\)"):
        classes_from_outputs(np.zeros((2, 4, 4, 3)))


def test_matches_scikit_learn_on_the_trained_demo(trained_demo):
    d = trained_demo
    m = confusion_matrix(d["model"], d["x_val"], d["y_val"])
    preds = np.argmax(d["model"].predict(d["x_val"], verbose=0), axis=-1)
    np.testing.assert_array_equal(m, sk_confusion_matrix(d["y_val"], preds, labels=range(5)))
    assert m.sum() == len(d["y_val"])
    assert np.trace(m) / m.sum() == pytest.approx(d["val_accuracy"])


def test_bad_input_raises_clear_errors():
    model = argmax_model()
    with pytest.raises(
        ValueError,
        match=r"The images have shape \(4, 2, 2, 3\); model 'argmax' expects \(N, 1, 1, 3\)\. Resize",
    ):
        confusion_matrix(model, np.zeros((4, 2, 2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"Labels must be one class index .* per example \(4\)"):
        confusion_matrix(model, pixels([0, 1, 2, 0]), np.zeros(3))
    with pytest.raises(ValueError, match=r"A label is class 3, outside the 3 classes 0..2"):
        confusion_matrix(model, pixels([0, 1, 2, 0]), np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="2 class names were given for 3 classes"):
        class_names_for(3, ["a", "b"])


def test_per_pixel_labels_count_pixels_at_the_output_resolution():
    # A 1x1 convolution with identity weights + softmax predicts each pixel's brightest
    # channel; the matrix counts pixels.
    i = keras.Input((2, 2, 3))
    conv = L.Conv2D(3, 1, activation="softmax", name="seg")
    model = keras.Model(i, conv(i), name="seg")
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    preds = np.array([[[0, 1], [2, 2]], [[1, 1], [0, 2]]])
    x = np.eye(3, dtype=np.float32)[preds]  # (2, 2, 2, 3)
    masks = np.array([[[0, 1], [2, 0]], [[1, 2], [0, 2]]])
    m = confusion_matrix(model, x, masks)
    # true 0: predicted 0, 2, 0; true 1: 1, 1; true 2: 2, 1, 2.
    np.testing.assert_array_equal(m, [[2, 0, 1], [0, 2, 0], [0, 1, 2]])
    np.testing.assert_array_equal(confusion_matrix(model, x, np.eye(3)[masks]), m)  # one-hot
    with pytest.raises(ValueError, match=r"size \(1, 1\) do not match the model's output maps"):
        confusion_matrix(model, x, masks[:, :1, :1])
