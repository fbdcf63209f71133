"""Tests of the synthetic shapes (keras_cnnvis.datasets.synthetic): determinism, balance, masks,
geometry, no colour shortcut. Nothing downloads.
"""

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from keras_cnnvis.datasets.synthetic import SHAPE_CLASSES, shapes

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
