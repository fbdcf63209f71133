"""render.patches: the seen mask equals a pixel-by-pixel reference, and every tile of the patch
grid is the patch (or its view) at its place, with the unseen pixels in the chosen grey.
"""

import numpy as np
import pytest

from keras_cnnvis.patches import max_activating_patches
from keras_cnnvis.render import image
from keras_cnnvis.render.patches import display_range, patch_grid, seen_mask
from patch_helpers import random_images, seeded_small


@pytest.fixture(scope="module")
def mined():
    # 'block/deep' (dilated, after a 'valid' conv): border units see less than their window.
    return max_activating_patches(seeded_small(), "block/deep", random_images(), k=3)


def tile(grid, row, col, size, scale, pad=1):
    """Tile (row, col) of a grid, shrunk back to `size` pixels."""
    h, w = size[0] * scale, size[1] * scale
    y, x = pad + row * (h + pad), pad + col * (w + pad)
    return grid[y : y + h : scale, x : x + w : scale]


def test_seen_mask_is_the_box_inside_the_window(mined):
    rf = mined.receptive_field
    mask = seen_mask(mined)
    assert mask.shape == (5, 3) + rf.size
    partial = 0
    for c, j in np.ndindex(5, 3):
        row, col = mined.positions[c, j]
        top, left, _, _ = rf.window(row, col)
        t, l, b, r = mined.boxes[c, j]
        ys, xs = np.meshgrid(np.arange(rf.size[0]), np.arange(rf.size[1]), indexing="ij")
        inside = (top + ys >= t) & (top + ys < b) & (left + xs >= l) & (left + xs < r)
        np.testing.assert_array_equal(mask[c, j], inside)
        partial += int(not inside.all())
    assert partial > 0  # some peak units sit near the border and see part of their window


def test_grid_tiles_are_the_patches_with_unseen_pixels_grey(mined):
    grid, geometry = patch_grid(mined, unseen=0.5)
    size = mined.receptive_field.size
    scale = image.auto_scale(max(size), target=48)
    assert geometry == {
        "rows": 5,
        "cols": 3,
        "tile": [size[0] * scale, size[1] * scale],
        "pad": 1,
        "scale": 1,
    }
    assert grid.shape == (5 * (size[0] * scale + 1) + 1, 3 * (size[1] * scale + 1) + 1, 3)
    shown = display_range(mined.patches)
    mask = seen_mask(mined)
    for c, j in np.ndindex(5, 3):
        got = tile(grid, c, j, size, scale)
        np.testing.assert_allclose(got[mask[c, j]], shown[c, j][mask[c, j]], atol=1e-6)
        assert np.all(got[~mask[c, j]] == 0.5)


def test_views_follow_their_patches(mined):
    views = np.random.default_rng(0).random(mined.patches.shape[:4] + (1,), dtype=np.float32)
    grid, geometry = patch_grid(mined, views, pad=2, target_tile=13)
    assert geometry["cols"] == 6 and geometry["pad"] == 2 and geometry["tile"] == [13, 13]
    shown = display_range(mined.patches)
    for c, j in np.ndindex(5, 3):
        np.testing.assert_allclose(tile(grid, c, 2 * j, (13, 13), 1, pad=2), shown[c, j])
        # A one-channel view is shown grey on all three channels.
        np.testing.assert_allclose(
            tile(grid, c, 2 * j + 1, (13, 13), 1, pad=2), np.repeat(views[c, j], 3, -1)
        )
