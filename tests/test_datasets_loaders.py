"""Tests of the loaders (keras_cnnvis.datasets.loaders): scikit-learn digits, the keras.datasets
conversion, image folders and the `load` dispatcher, through the package's public names.
Nothing downloads.
"""

import os

import cv2
import numpy as np
import pytest

from keras_cnnvis import datasets
from keras_cnnvis.datasets import SHAPE_CLASSES, loaders, shapes, synthetic


def test_package_re_exports_every_public_name():
    names = (
        "SHAPE_CLASSES",
        "KERAS_DATASETS",
        "IMAGE_EXTENSIONS",
        "DATASET_NAMES",
        "shapes",
        "digits",
        "keras_dataset",
        "from_uint8",
        "image_folder",
        "load",
    )
    for name in names:
        home = synthetic if name in synthetic.__all__ else loaders
        assert getattr(datasets, name) is getattr(home, name), name
    assert set(datasets.__all__) == set(names) - {"from_uint8"}


def test_digits_offline():
    images, labels = datasets.digits()
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.dtype == np.int32 and set(labels.tolist()) == set(range(10))
    big, big_labels = datasets.digits(size=24)
    assert big.shape == (1797, 24, 24, 1) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    np.testing.assert_array_equal(big_labels, labels)
    # Shrinking the enlarged digits back gives the originals again, roughly.
    back = np.stack([cv2.resize(b, (8, 8), interpolation=cv2.INTER_AREA) for b in big])
    assert np.abs(back - images[..., 0]).mean() < 0.05


def test_keras_dataset_validates_before_downloading():
    with pytest.raises(ValueError) as info:
        datasets.keras_dataset("imagenet")
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        datasets.keras_dataset("mnist", split="validation")
    with pytest.raises(ValueError, match="`n` must be at least 1"):
        datasets.keras_dataset("mnist", n=0)


def test_keras_arrays_conversion():
    """The conversion applied to keras.datasets arrays (tested without a download)."""
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    images, labels = datasets.from_uint8(gray[:4], np.arange(4, dtype=np.uint8))
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], gray[:4] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    assert labels.dtype == np.int32
    colour = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    images, labels = datasets.from_uint8(colour, np.array([[1], [2], [3], [4]]))
    assert images.shape == (4, 32, 32, 3) and labels.tolist() == [1, 2, 3, 4]
    assert images.max() <= 1.0 and images.min() >= 0.0
    assert datasets.KERAS_DATASETS["cifar10"][:2] == ("airplane", "automobile")
    assert len(datasets.KERAS_DATASETS["cifar10"]) == 10


def _write(path, image_rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def folder(tmp_path):
    red = np.zeros((16, 20, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((10, 10, 3), np.uint8)
    blue[..., 2] = 200
    _write(tmp_path / "red" / "a.png", red)
    _write(tmp_path / "red" / "b.JPG", red)
    _write(tmp_path / "red" / "c.bmp", red)
    _write(tmp_path / "blue" / "x.jpeg", blue)
    _write(tmp_path / "blue" / "gray.png", np.full((12, 12), 128, np.uint8))
    (tmp_path / "blue" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    return tmp_path


def test_image_folder_round_trip(folder):
    images, labels, class_names = datasets.image_folder(folder, size=8)
    assert class_names == ["blue", "red"]
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1])
    # Sorted files: blue/gray.png, blue/x.jpeg, then red/a.png, red/b.JPG, red/c.bmp.
    np.testing.assert_allclose(images[0], 128 / 255, atol=1e-6)
    np.testing.assert_allclose(images[1].mean((0, 1)), [0, 0, 200 / 255], atol=0.03)
    for image in images[2:]:  # RGB order, not OpenCV's BGR
        np.testing.assert_allclose(image.mean((0, 1)), [1, 0, 0], atol=0.03)

    images, labels, class_names = datasets.image_folder(folder, size=4, class_names=["red", "blue"])
    assert class_names == ["red", "blue"]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])
    assert images[:3, ..., 0].min() > 0.95


def test_image_folder_errors(tmp_path, folder):
    with pytest.raises(ValueError, match="does not exist"):
        datasets.image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="No class subfolders"):
        datasets.image_folder(folder / "red")
    with pytest.raises(ValueError) as info:
        datasets.image_folder(folder, class_names=["red", "green"])
    assert "['green']" in str(info.value) and "['blue', 'red']" in str(info.value)
    (folder / "empty").mkdir()
    with pytest.raises(ValueError) as info:
        datasets.image_folder(folder)
    message = str(info.value)
    assert "No images found" in message and "empty" in message
    for ext in (".png", ".jpg", ".jpeg", ".bmp"):
        assert ext in message
    (folder / "red" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        datasets.image_folder(folder, class_names=["red"])


def test_load_dispatches(folder):
    images, labels, names = datasets.load("shapes", n=25, size=32, seed=3)
    assert images.shape == (25, 32, 32, 3) and names == list(SHAPE_CLASSES)
    np.testing.assert_array_equal(images, shapes(25, size=32, seed=3)[0])

    images, labels, names = datasets.load("digits", n=100, size=16)
    assert images.shape == (100, 16, 16, 1) and names == [str(i) for i in range(10)]
    assert len(set(labels.tolist())) == 10  # a random subset, not the first 100 rows
    again = datasets.load("digits", n=100, size=16)
    np.testing.assert_array_equal(images, again[0])

    images, labels, names = datasets.load(str(folder), size=8, n=3)
    assert names == ["blue", "red"] and images.shape == (3, 8, 8, 3)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("imagenet", {}, "valid names are ['shapes', 'digits', 'mnist'"),
        ("imagenet", {}, "path of an existing folder"),
        ("shapes", {"n": 0}, "`n` must be at least 1"),
        ("shapes", {"size": 0}, "`size` must be at least 1"),
        ("shapes", {"size": 12}, "`size` must be at least 16"),
    ],
)
def test_load_bad_input(name, kwargs, message):
    with pytest.raises(ValueError) as info:
        datasets.load(name, **kwargs)
    assert message in str(info.value)
