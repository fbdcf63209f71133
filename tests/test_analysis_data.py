"""The data side of `analyze`: loading folders, `.npy`/`.npz` files and built-in sets, fitting
images to a model (size, channels), preprocessing by name, and labels that are not the
model's classes; checked against hand computation and OpenCV directly."""

import os

import cv2
import keras
import numpy as np
import pytest

from keras_cnnvis.analysis import (
    auto_preprocess,
    check_source,
    fit_images,
    load_images,
    prepare,
    preprocess_function,
    to_unit,
)

L = keras.layers


def write_folder(root, classes=("a", "b", "c"), per_class=3, size=(32, 28), seed=0):
    """PNG files in class subfolders; returns {path: RGB uint8 image}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes:
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            path = os.path.join(root, name, f"{i}.png")
            cv2.imwrite(path, img[..., ::-1])
            written[path] = img
    return written


def cnn(shape=(20, 20, 3), n_classes=3, front=()):
    i = keras.Input(shape)
    x = i
    for layer in front:
        x = layer(x)
    x = L.Conv2D(4, 3, padding="same", name="conv")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(n_classes, activation="softmax")(x))


def test_preprocessing_by_name():
    x = np.array([[[[1.0, 0.0, 0.5]]]], np.float32)  # one pixel: red, no green, half blue
    np.testing.assert_array_equal(preprocess_function("unit")(x), x)
    np.testing.assert_array_equal(preprocess_function("pixels")(x), x * 255)
    np.testing.assert_array_equal(preprocess_function("symmetric")(x), [[[[1.0, -1.0, 0.0]]]])
    assert preprocess_function("none") is None
    # ResNet50 ("caffe"): BGR order minus the ImageNet means.
    caffe = preprocess_function("ResNet50")(x)
    np.testing.assert_allclose(caffe, [[[[127.5 - 103.939, -116.779, 255 - 123.68]]]], atol=1e-4)
    # MobileNetV2 and its module name: [-1, 1].
    for name in ("mobilenet_v2", "mobilenetv2"):
        np.testing.assert_allclose(preprocess_function(name)(x), [[[[1, -1, 0]]]], atol=1e-6)
    np.testing.assert_allclose(preprocess_function("efficientnet")(x), x * 255)  # pass-through
    with pytest.raises(ValueError, match="Unknown preprocessing 'resnet5'"):
        preprocess_function("resnet5")


def test_auto_preprocessing_follows_the_models_own_rescaling():
    augment = keras.Sequential([L.RandomFlip("horizontal")], name="augment")
    keras_io = cnn(front=(augment, L.Rescaling(1.0 / 255)))
    assert auto_preprocess(keras_io) == "pixels"
    assert auto_preprocess(cnn()) == "unit"
    assert auto_preprocess(cnn(front=(L.Rescaling(2.0, offset=-1.0),))) == "unit"
    norm = L.Normalization(mean=[123.7, 116.3, 103.5], variance=[3409.0, 3262.7, 3291.7])
    assert auto_preprocess(cnn(front=(norm,))) == "pixels"


def test_to_unit():
    np.testing.assert_allclose(to_unit(np.array([0.0, 51.0, 255.0]), integers=True), [0, 0.2, 1])
    np.testing.assert_allclose(to_unit(np.array([0.0, 2.0, 255.0])), [0, 2 / 255, 1])
    np.testing.assert_array_equal(to_unit(np.array([0.0, 0.5, 1.0])), [0, 0.5, 1])
    with pytest.raises(ValueError, match=r"range over \[-1, 1\].*preprocess='none'"):
        to_unit(np.array([-1.0, 1.0]))


def test_fit_images_converts_channels_and_size():
    rgb = np.zeros((2, 4, 6, 3), np.float32)
    rgb[0, 0, 0] = [1.0, 0.5, 0.0]
    gray = fit_images(rgb, (4, 6, 1))
    assert gray.shape == (2, 4, 6, 1)
    assert gray[0, 0, 0, 0] == pytest.approx(0.299 + 0.587 * 0.5)
    back = fit_images(gray, (4, 6, 3))
    np.testing.assert_array_equal(back, np.repeat(gray, 3, axis=-1))
    rgba = np.concatenate([rgb, np.ones((2, 4, 6, 1), np.float32)], axis=-1)
    np.testing.assert_array_equal(fit_images(rgba, (4, 6, 3)), rgb)
    resized = fit_images(rgb, (8, 3, 3))
    expected = cv2.resize(rgb[0], (3, 8), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(resized[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="takes 3-channel images; the images have 2"):
        fit_images(np.zeros((1, 4, 4, 2)), (4, 4, 3))


def test_npz_npy_and_balanced_subsets(tmp_path):
    x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)  # grayscale, no channel axis
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["p", "q", "r"]))
    loaded = load_images(str(tmp_path / "d.npz"), n=6)
    assert loaded.x.shape == (6, 4, 4, 1) and loaded.integers and not loaded.unit
    assert loaded.class_names == ["p", "q", "r"]
    assert sorted(loaded.y.tolist()) == [0, 0, 1, 1, 2, 2]  # classes taken in turn
    for image, label in zip(loaded.x, loaded.y):
        i = int(image[0, 0, 0]) // 16
        assert y[i] == label
        np.testing.assert_array_equal(image[..., 0], x[i])
    np.save(tmp_path / "d.npy", x.astype(np.float32) / 255)
    plain = load_images(str(tmp_path / "d.npy"))
    assert plain.y is None and plain.x.shape == (10, 4, 4, 1) and not plain.integers
    np.savez(tmp_path / "bad.npz", pixels=x)
    with pytest.raises(ValueError, match=r"holds \['pixels'\]; store the images as 'x'"):
        load_images(str(tmp_path / "bad.npz"))


def test_sources_are_checked_before_loading(tmp_path):
    assert check_source("shapes") == "builtin"
    assert check_source(str(tmp_path)) == "folder"
    assert check_source(np.zeros((1, 2, 2, 3))) == "arrays"
    with pytest.raises(FileNotFoundError, match="Unknown --data 'nope': no such file"):
        check_source("nope", "--data")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="Cannot read data .*notes.txt"):
        check_source(str(tmp_path / "notes.txt"))


def test_a_folder_for_a_grayscale_model_matches_opencv(tmp_path):
    written = write_folder(str(tmp_path / "f"))
    model = cnn((20, 20, 1))
    x, y, names, used = prepare(model, str(tmp_path / "f"), n=None)
    assert used == "unit" and names == ["a", "b", "c"] and y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    paths = sorted(written)
    for image, path in zip(x, paths):
        small = cv2.resize(written[path], (20, 20), interpolation=cv2.INTER_AREA)
        luma = (small.astype(np.float32) / 255) @ np.array([0.299, 0.587, 0.114], np.float32)
        np.testing.assert_allclose(image[..., 0], luma, atol=1e-5)


def test_symmetric_and_uint8_arrays_reach_the_model_scaled(tmp_path):
    pixels = np.full((2, 20, 20, 3), 51, np.uint8)
    x, y, _, used = prepare(cnn(), (pixels, np.array([0, 2])), preprocess="symmetric")
    np.testing.assert_allclose(x, 0.2 * 2 - 1, atol=1e-6)
    assert used == "symmetric" and y.tolist() == [0, 2]
    raw, _, _, _ = prepare(cnn(), pixels, preprocess="none")
    np.testing.assert_array_equal(raw, pixels.astype(np.float32))


def test_labels_that_are_not_the_models_classes_are_dropped(tmp_path):
    write_folder(str(tmp_path / "f"), classes=("a", "b"), per_class=2)
    with pytest.warns(UserWarning, match="has 2 classes but model .* has 5"):
        x, y, names, _ = prepare(cnn(n_classes=5), str(tmp_path / "f"))
    assert len(x) == 4 and y is None and names is None
    with pytest.warns(UserWarning, match="has 4 classes but model .* has 3"):
        _, y, _, _ = prepare(cnn(), (np.zeros((2, 20, 20, 3)), np.array([0, 3])))
    assert y is None


def test_images_that_cannot_match_the_input():
    with pytest.raises(ValueError, match="takes 3-channel images; the data images have 2"):
        prepare(cnn(), np.zeros((2, 20, 20, 2)))
    with pytest.raises(ValueError, match=r"takes 20x20 images; a size of 8x8 applies only"):
        prepare(cnn(), np.zeros((2, 20, 20, 3)), size=(8, 8))
