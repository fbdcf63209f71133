"""ConfusionMatrixCallback in a real fit: tags, steps, the logged matrix against the core, the
logged image against the renderer, and misconfiguration reported before the first epoch.
"""

import os

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis.callbacks import ConfusionMatrixCallback
from keras_cnnvis.callbacks.confusion_matrix import tag_name
from keras_cnnvis.confusion import confusion_matrix, per_class_accuracy
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.confusion import render_confusion

L = keras.layers


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
        ValueError,
        match=r"The validation images have shape \(\d+, \d+, 3\); expected a batch of images \(N, height, width, channels\)\. For one image pass image\[None\]",
    ):
        ConfusionMatrixCallback("x", (x[0], y))


def test_per_pixel_masks_of_another_size_raise_before_the_first_epoch(tmp_path, data):
    x, y = data
    i = keras.Input((6, 6, 3))
    model = keras.Model(i, L.Conv2D(3, 1, activation="softmax")(i), name="seg")
    model.compile("adam", "sparse_categorical_crossentropy")
    masks = np.broadcast_to(y[:, None, None], (60, 6, 6))
    epochs = EpochsSeen()
    cb = ConfusionMatrixCallback(str(tmp_path), (x, masks[:, :3, :3]))
    with pytest.raises(ValueError, match=r"size \(3, 3\) do not match the model's output maps"):
        model.fit(x, masks, epochs=1, verbose=0, callbacks=[epochs, cb])
    assert epochs.begun == []
