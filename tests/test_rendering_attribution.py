"""Rendering of attribution maps: display scaling by style, stored map sizes, overlays and the
json/attribution record, against hand-computed values."""

import numpy as np
import pytest

from keras_cnnvis.rendering import attribution as R
from keras_cnnvis.rendering import image


def test_display_scaling_by_style_and_by_method_name():
    # 100 values 1..100 in one map: smooth scales by the maximum, gradient by the 99th
    # percentile (99.01 with linear interpolation), so the top value clips to 1.
    maps = np.arange(1, 101, dtype=np.float32).reshape(1, 10, 10)
    np.testing.assert_allclose(R.display_maps(maps, "smooth"), maps / 100, rtol=1e-6)
    np.testing.assert_allclose(
        R.display_maps(maps, "gradient"), np.minimum(maps / 99.01, 1), rtol=1e-6
    )
    # Signed maps count by magnitude; an all-zero map stays zero; one scale per map.
    signed = np.stack([-maps[0], np.zeros((10, 10), np.float32)])
    out = R.display_maps(signed, "grad_cam")  # a method's name stands for its style
    np.testing.assert_allclose(out[0], maps[0] / 100, rtol=1e-6)
    assert not out[1].any()
    np.testing.assert_array_equal(R.display_maps(maps, "saliency"), R.display_maps(maps))
    with pytest.raises(ValueError, match=r"Unknown display 'blur'"):
        R.display_maps(maps, "blur")


def test_map_size_and_stored_maps():
    assert R.map_size(16, 16) == (16, 16)
    assert R.map_size(96, 80) == (64, 53)  # 80 * 64 / 96 = 53.3
    assert R.map_size(8, 300, limit=30) == (1, 30)
    maps = np.random.default_rng(0).random((2, 96, 80)).astype(np.float32)
    small = R.stored_maps(maps)
    assert small.shape == (2, 64, 53) and small.min() >= 0 and small.max() <= 1
    # Bilinear with half-pixel centres: a 2x2 block average for an exact halving.
    ramp = np.arange(64, dtype=np.float32)[None, None, :] / 64 * np.ones((1, 64, 1))
    halved = R.stored_maps(ramp, 32)
    np.testing.assert_allclose(halved[0, 0], (np.arange(0, 64, 2) + 0.5) / 64, atol=1e-6)


def test_overlays_are_the_colour_mapped_maps_over_the_images():
    images = np.zeros((2, 4, 4, 1), np.float32)
    maps = np.stack([np.zeros((4, 4)), np.ones((4, 4))]).astype(np.float32)
    out = R.overlays(images, maps, alpha=1.0)
    assert out.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(out[0], np.broadcast_to(image.colormap(np.zeros(1))[0], (4, 4, 3)))
    np.testing.assert_allclose(out[1], np.broadcast_to(image.colormap(np.ones(1))[0], (4, 4, 3)))


def test_attribution_record_fields():
    maps = np.full((2, 3, 2), 0.12345, np.float32)
    record = R.attribution_record(
        "grad_cam",
        maps,
        layer="conv",
        target="label",
        class_names=("a", "b"),
        labels=np.array([1, 0]),
        predictions=np.array([1, 1]),
        classes=np.array([1, 0]),
        scores=np.array([0.75, 0.25], np.float32),
    )
    assert record == {
        "method": "grad_cam",
        "layer": "conv",
        "size": [3, 2],
        "target": "label",
        "class_names": ["a", "b"],
        "probes": [
            {"label": 1, "prediction": 1, "class": 1, "score": 0.75},
            {"label": 0, "prediction": 1, "class": 0, "score": 0.25},
        ],
        "maps": [[0.123] * 6, [0.123] * 6],
    }
    bare = R.attribution_record("saliency", maps)
    assert bare["probes"][0] == {"label": None, "prediction": None, "class": None, "score": None}
