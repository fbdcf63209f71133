"""Tests of the built-in data: synthetic shapes (determinism, balance, masks, geometry, no colour
shortcut), scikit-learn digits, image folders and the `load` dispatcher. Nothing downloads.
"""

import os

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from keras_cnnvis import datasets
from keras_cnnvis.datasets import SHAPE_CLASSES, shapes

CIRCLE, SQUARE, TRIANGLE, CROSS, RING = range(5)


@pytest.fixture(scope="module")
def sample():
    return shapes(300, size=64, seed=7)


def _filled_hull(mask):
    ys, xs = np.nonzero(mask)
    hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32))
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)


def _corners(mask):
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    return len(cv2.approxPolyDP(contour, 0.04 * cv2.arcLength(contour, True), True))


def test_shapes_same_seed_same_arrays_other_seed_different():
    a = shapes(40, size=32, seed=3)
    b = shapes(40, size=32, seed=3)
    c = shapes(40, size=32, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])
    assert not np.array_equal(a[1], c[1])


def test_shapes_dtypes_shapes_and_ranges():
    images, labels, masks = shapes(37, size=48, seed=1)
    assert images.shape == (37, 48, 48, 3) and images.dtype == np.float32
    assert labels.shape == (37,) and labels.dtype == np.int32
    assert masks.shape == (37, 48, 48) and masks.dtype == bool
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.isfinite(images).all()
    assert set(labels.tolist()) == set(range(len(SHAPE_CLASSES)))
    # Real images, not constants: each has texture and its own background colour.
    assert (images.std(axis=(1, 2, 3)) > 0.02).all()
    assert len(np.unique(images.mean(axis=(1, 2)).round(3), axis=0)) == 37


def test_shapes_labels_balanced_and_shuffled():
    _, labels, _ = shapes(103, size=16, seed=0)
    counts = np.bincount(labels, minlength=5)
    assert counts.min() >= 20 and counts.max() <= 21 and counts.sum() == 103
    assert not np.array_equal(labels, np.arange(103) % 5)


def test_shapes_class_subset_relabels_in_given_order():
    images, labels, masks = shapes(60, size=32, seed=2, classes=["ring", "circle"])
    assert sorted(np.bincount(labels).tolist()) == [30, 30]
    centre_on = [m[tuple(np.round(np.argwhere(m).mean(0)).astype(int))] for m in masks]
    centre_on = np.array(centre_on)
    # Label 0 is "ring" (hole at the centre), label 1 is "circle" (filled).
    assert not centre_on[labels == 0].any()
    assert centre_on[labels == 1].all()


def test_masks_cover_the_shape_exactly(sample):
    images, labels, masks = sample
    fraction = masks.mean(axis=(1, 2))
    assert fraction.min() > 0.03 and fraction.max() < 0.2
    kernel = np.ones((3, 3), np.uint8)
    for image, mask in zip(images, masks):
        m8 = mask.astype(np.uint8)
        inner = cv2.erode(m8, kernel).astype(bool)
        band = cv2.dilate(m8, kernel, iterations=2).astype(bool) & ~mask
        inside = image[inner]
        colour = inside.mean(axis=0)
        # Inside the mask: one flat colour plus pixel noise only.
        assert inside.std(axis=0).max() < 0.06
        # Just outside the mask: clearly not the shape colour (contrast is guaranteed).
        band_distance = np.linalg.norm(image[band] - colour, axis=1)
        assert band_distance.mean() > 0.3
        assert np.linalg.norm(image[band].mean(0) - colour) > 0.3


def test_shapes_per_class_geometry(sample):
    _, labels, masks = sample
    for label, mask in zip(labels, masks):
        centre = tuple(np.round(np.argwhere(mask).mean(axis=0)).astype(int))
        solidity = mask.sum() / _filled_hull(mask).sum()
        if label == RING:
            assert not mask[centre], "a ring has a hole at its centre"
            assert solidity < 0.8
        else:
            assert mask[centre]
        if label == CROSS:
            assert solidity < 0.8, "a cross is far from convex"
        if label in (CIRCLE, SQUARE, TRIANGLE):
            assert solidity > 0.87
        if label == TRIANGLE:
            assert _corners(mask) == 3
        if label == SQUARE:
            assert _corners(mask) == 4
    # Circles, unlike squares, have no corners to simplify to.
    assert min(_corners(m) for m in masks[labels == CIRCLE]) >= 5


def test_object_area_does_not_reveal_the_class(sample):
    _, labels, masks = sample
    area = masks.sum(axis=(1, 2))
    medians = [np.median(area[labels == k]) for k in range(5)]
    assert max(medians) / min(medians) < 1.15


def test_class_is_not_predictable_from_colour_statistics():
    images, labels, masks = shapes(1000, size=24, seed=11)
    mean_rgb = images.mean(axis=(1, 2))
    outside = ~masks[..., None]
    count = outside.sum(axis=(1, 2))
    bg_mean = (images * outside).sum(axis=(1, 2)) / count
    bg_std = np.sqrt(((images - bg_mean[:, None, None]) ** 2 * outside).sum((1, 2)) / count)
    inside = masks[..., None]
    shape_rgb = (images * inside).sum(axis=(1, 2)) / inside.sum(axis=(1, 2))
    background = np.concatenate([bg_mean, bg_std], axis=1)
    for features in (mean_rgb, background, shape_rgb):
        score = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=5)
        assert score.mean() < 0.3, score  # chance is 0.2


def test_shapes_generation_is_fast():
    import time

    start = time.perf_counter()
    shapes(1000, size=64, seed=0)
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "`n` must be at least 1"),
        ({"n": 2.5}, "`n` must be an integer"),
        ({"n": 10, "size": 8}, "`size` must be at least 16"),
        ({"n": 10, "classes": ["circle", "hexagon"]}, "valid classes are ['circle'"),
        ({"n": 10, "classes": "circle"}, "classes=['circle']"),
        ({"n": 10, "classes": []}, "pick at least one"),
        ({"n": 10, "classes": ["ring", "ring"]}, "duplicates"),
    ],
)
def test_shapes_bad_input(kwargs, message):
    with pytest.raises(ValueError) as info:
        shapes(**kwargs)
    assert message in str(info.value)


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
