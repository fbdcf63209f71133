"""Rendering helpers (keras_cnnvis.rendering.image): exact values of normalisation, grid geometry,
overlays and PNGs; the old path keras_cnnvis.image still gives this module."""

import cv2
import numpy as np
import pytest

from keras_cnnvis.rendering import image


def test_normalize_minmax_and_symmetric():
    x = np.array([-2.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(image.normalize(x), [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(image.normalize(x, "symmetric"), [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(image.normalize(np.array([1.0, 3.0]), "symmetric"), [2 / 3, 1.0])
    # per-row statistics
    rows = image.normalize(np.array([[0.0, 1.0], [0.0, 4.0]]), axis=1)
    np.testing.assert_allclose(rows, [[0, 1], [0, 1]])
    # constant and non-finite input
    np.testing.assert_allclose(image.normalize(np.full(3, 7.0)), 0.5)
    out = image.normalize(np.array([np.nan, 0.0, 1.0, np.inf]))
    np.testing.assert_allclose(out[:3], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="Unknown normalize mode"):
        image.normalize(x, "zscore")


def test_tile_grid_geometry_and_placement():
    tiles = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 1)) / 10
    grid = image.tile_grid(tiles, cols=3, pad=1, pad_value=1.0, scale=2)
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (6 + 1) + 1, 1)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 1 + r * 5, 1 + c * 7
        np.testing.assert_allclose(grid[y : y + 4, x : x + 6], i / 10)
    np.testing.assert_allclose(grid[6:10, 15:21], 1.0)  # empty 6th slot stays padding
    assert grid[0].min() == 1.0 and grid[:, 0].min() == 1.0
    assert image.grid_shape(10) == (3, 4)


def test_overlay_is_an_exact_blend():
    img = np.full((4, 4, 3), 0.2, np.float32)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    out = image.overlay(img, heat, alpha=0.25, cmap="gray")
    np.testing.assert_allclose(out[0, 0], 0.75 * 0.2 + 0.25 * 1.0, atol=1e-6)
    np.testing.assert_allclose(out[3, 3], 0.75 * 0.2, atol=1e-6)


def test_png_round_trip_keeps_rgb_order():
    img = np.zeros((3, 5, 3), np.uint8)
    img[..., 0] = 200  # red
    decoded = cv2.imdecode(np.frombuffer(image.encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (3, 5, 3)
    np.testing.assert_array_equal(decoded[..., ::-1], img)


def test_outline_tiles_frames_only_chosen_tiles():
    grid = image.tile_grid(np.zeros((4, 3, 3, 1)), cols=2, pad=1, pad_value=1.0)
    out = image.outline_tiles(grid, [3], tile=(3, 3), cols=2, pad=1)
    assert out.shape == (9, 9, 3)
    np.testing.assert_allclose(out[5, 5:8], [[1, 0, 0]] * 3)  # top edge of tile 3
    np.testing.assert_allclose(out[6, 6], [0, 0, 0])  # tile 3 centre untouched
    np.testing.assert_allclose(out[1:4, 1:4], 0)  # tile 0 untouched


def test_draw_text_marks_pixels_in_the_given_colour():
    img = np.ones((20, 60, 3), np.float32)
    out = image.draw_text(img, "ab", (2, 15), color=(1.0, 0.0, 0.0), size=0.5)
    assert out.dtype == np.float32 and out.shape == img.shape
    changed = np.any(out != 1.0, axis=-1)
    assert 5 < changed.sum() < 20 * 60 // 2
    assert np.all(out[..., 0] == 1.0)  # red text on white: the red channel stays full
    assert not changed[:, 30:].any()  # two letters stay at the left


def test_old_module_path_gives_the_moved_module():
    import keras_cnnvis
    import keras_cnnvis.image as old
    from keras_cnnvis.image import encode_png

    assert old is image and keras_cnnvis.image is image and encode_png is image.encode_png
