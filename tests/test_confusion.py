"""Confusion matrix: hand-counted on a fixed-weight model, scikit-learn as a peer on the
trained demo, the rendered image, and ConfusionMatrixCallback in a real fit.
"""

import os

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import image
from keras_cnnvis.callbacks import ConfusionMatrixCallback
from keras_cnnvis.callbacks.confusion_matrix import render_confusion, tag_name
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
        ValueError, match=r"The images have shape \(4, 2, 2, 3\); model 'argmax' expects \(N, 1, 1, 3\)\. Resize"
    ):
        confusion_matrix(model, np.zeros((4, 2, 2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"Labels must be one class index .* per example \(4\)"):
        confusion_matrix(model, pixels([0, 1, 2, 0]), np.zeros(3))
    with pytest.raises(ValueError, match=r"A label is class 3, outside the 3 classes 0..2"):
        confusion_matrix(model, pixels([0, 1, 2, 0]), np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="2 class names were given for 3 classes"):
        class_names_for(3, ["a", "b"])


def test_rendered_matrix_colours_cells_by_fraction():
    img, centers = render_confusion(np.array([[9, 0], [1, 3]]), ["yes", "no"], "t")
    assert img.dtype == np.float32 and img.shape[2] == 3 and 0 <= img.min() and img.max() <= 1
    assert centers.shape == (2, 2, 2)

    def cell(t, p):  # mean colour of a small square just off the cell centre (avoids the text)
        r, c = (int(v) for v in centers[t, p])
        return img[r - 18 : r - 12, c - 18 : c - 12].mean(axis=(0, 1))

    # Fractions of the true class: 1.0, 0.0 / 0.25, 0.75 -> darker blue for larger ones.
    assert cell(0, 0).sum() < 1.0 and cell(0, 1).min() > 0.9
    assert cell(0, 0).sum() < cell(1, 1).sum() < cell(1, 0).sum() < cell(0, 1).sum()
    bigger, _ = render_confusion(np.eye(12, dtype=int), [f"class {i}" for i in range(12)])
    assert bigger.shape[0] > img.shape[0] and bigger.shape[1] > img.shape[1]


# -- ConfusionMatrixCallback ---------------------------------------------------------------


def trainable():
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3, activation="relu")(i)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(i, L.Dense(3, activation="softmax")(x), name="three")
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    x = rng.random((60, 6, 6, 3), dtype=np.float32) * 0.3
    x[np.arange(60), :, :, y] += 0.7  # the class is the bright channel
    return x, y


def test_callback_logs_matrix_scalars_and_record_in_a_real_fit(tmp_path, data):
    x, y = data
    model = trainable()
    names = ["T-shirt/top", "trouser", "ankle boot"]
    cb = ConfusionMatrixCallback(str(tmp_path), (x, y), class_names=names, on_error="raise")
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[cb])
    assert os.listdir(tmp_path) == ["cnnvis"]
    run = read_run(str(tmp_path / "cnnvis"))
    scalar_tags = {
        "confusion/accuracy/T-shirt_top",
        "confusion/accuracy/trouser",
        "confusion/accuracy/ankle_boot",
    }
    assert set(run) == {"confusion/matrix", "json/confusion/matrix"} | scalar_tags
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2, 3], tag
    final = confusion_matrix(model, x, y)
    meta = run["json/confusion/matrix"][-1].value
    assert meta["class_names"] == names and meta["matrix"] == final.tolist()
    assert meta["n_examples"] == 60 and meta["accuracy"] == pytest.approx(np.trace(final) / 60)
    np.testing.assert_allclose(meta["per_class_accuracy"], per_class_accuracy(final), rtol=1e-6)
    for name, acc in zip(names, per_class_accuracy(final)):
        assert run[f"confusion/accuracy/{tag_name(name)}"][-1].value == pytest.approx(acc)
    assert meta["accuracy"] > run["json/confusion/matrix"][0].value["accuracy"]  # it learned
    logged = run["confusion/matrix"][-1].value[0]
    title = f"step 3: accuracy {meta['accuracy']:.3f} (n=60)"
    expected, _ = render_confusion(final, names, title)
    np.testing.assert_array_equal(logged[..., ::-1], image.to_uint8(expected))


def test_callback_default_names_and_every_n_epochs(tmp_path, data):
    x, y = data
    model = trainable()
    cb = ConfusionMatrixCallback(
        str(tmp_path), (x, np.eye(3)[y]), every_n_epochs=2, log_initial=False
    )
    model.fit(x, y, epochs=4, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert run["json/confusion/matrix"][0].value["class_names"] == ["0", "1", "2"]
    assert [r.step for r in run["confusion/accuracy/2"]] == [2, 4]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"class_names": ["a", "b"]}, "2 class names were given for 3 classes"),
        ({"labels": np.array([0, 1, 5] * 20)}, r"A label is class 5, outside the 3 classes"),
        (
            {"images": np.zeros((60, 5, 5, 3))},
            r"The validation images have shape \(\d+, 5, 5, 3\); model 'three' expects \(N, 6, 6, 3\)",
        ),
    ],
)
def test_callback_misconfiguration_raises_before_the_first_epoch(tmp_path, data, kwargs, message):
    x, y = data
    vx, vy = kwargs.pop("images", x), kwargs.pop("labels", y)
    model = trainable()
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        model.fit(
            x,
            y,
            epochs=2,
            verbose=0,
            callbacks=[epochs, ConfusionMatrixCallback(str(tmp_path), (vx, vy), **kwargs)],
        )
    assert epochs.begun == [] and not (tmp_path / "cnnvis").exists()


def test_callback_constructor_validation(data):
    x, y = data
    with pytest.raises(ValueError, match=r"validation_data must be a pair \(images, labels\)"):
        ConfusionMatrixCallback("x", x)
    with pytest.raises(ValueError, match=r"Labels must be one class index"):
        ConfusionMatrixCallback("x", (x, y[:10]))
    with pytest.raises(
        ValueError, match=r"The validation images have shape \(\d+, \d+, 3\); expected a batch of images \(N, height, width, channels\)\. For one image pass image\[None\]"
    ):
        ConfusionMatrixCallback("x", (x[0], y))
