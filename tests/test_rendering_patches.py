"""render.patches: the seen mask equals a pixel-by-pixel reference, and every tile of the patch
grid is the patch (or its view) at its place, with the unseen pixels in the chosen grey; small
fields are drawn in context: every context tile equals the enlarged image region with the frame
exactly at the unit's window (checked against a distance-to-rectangle reference).
"""

import keras
import numpy as np
import pytest

from keras_cnnvis.patches import PatchMiner, max_activating_patches
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.patches import (
    FRAME,
    context_zoom,
    display_range,
    patch_grid,
    seen_mask,
    tile_view,
)
from patch_helpers import random_images, seeded_small

L = keras.layers


@pytest.fixture(scope="module")
def model():
    return seeded_small()


@pytest.fixture(scope="module")
def mined(model):
    # 'block/deep' (dilated, after a 'valid' conv): border units see less than their window.
    return max_activating_patches(model, "block/deep", random_images(), k=3, context=False)


@pytest.fixture(scope="module")
def in_context(model):
    # The same layer with its 22x21 context (a 13x13 field is small next to the image).
    return max_activating_patches(model, "block/deep", random_images(), k=3)


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


def reference_context_tile(result, c, j, content, zoom, unseen=0.5):
    """Context tile (c, j) built independently: `content` (region-sized, RGB) enlarged by
    repetition, the window part the unit does not see set to `unseen`, and each pixel at
    Chebyshev distance d = 1, 2, 3 outside the window (in tile pixels) in FRAME[d - 1]."""
    h, w = content.shape[:2]
    oy, ox = result.context_origins[c, j]
    top, left, bottom, right = result.receptive_field.window(*result.positions[c, j])
    wt, wl = max(top - oy, 0), max(left - ox, 0)
    wb, wr = min(bottom - oy, h), min(right - ox, w)
    t, l, b, r = result.boxes[c, j]
    ys, xs = np.mgrid[0:h, 0:w]
    in_window = (ys >= wt) & (ys < wb) & (xs >= wl) & (xs < wr)
    sees = (ys + oy >= t) & (ys + oy < b) & (xs + ox >= l) & (xs + ox < r)
    region = np.where((in_window & ~sees)[..., None], np.float32(unseen), content)
    tile = np.repeat(np.repeat(region, zoom, 0), zoom, 1)
    ty, tx = np.mgrid[0 : h * zoom, 0 : w * zoom]
    d = np.maximum.reduce(
        [wt * zoom - ty, ty - (wb * zoom - 1), wl * zoom - tx, tx - (wr * zoom - 1), 0 * ty]
    )
    for ring, colour in enumerate(FRAME, start=1):
        tile[d == ring] = colour
    return tile


def test_context_tiles_are_the_enlarged_region_with_the_window_framed(in_context):
    grid, geometry = patch_grid(in_context, unseen=0.5)
    assert in_context.context.shape == (5, 3, 22, 21, 3)
    zoom = 4  # round(88 / 22)
    assert context_zoom((22, 21)) == zoom
    assert geometry == {"rows": 5, "cols": 3, "tile": [88, 84], "pad": 1, "scale": 1}
    assert grid.shape == (5 * 89 + 1, 3 * 85 + 1, 3)
    shown = display_range(in_context.context)
    partial = 0
    for c, j in np.ndindex(5, 3):
        got = tile(grid, c, j, (88, 84), 1)
        np.testing.assert_array_equal(got, reference_context_tile(in_context, c, j, shown[c, j], 4))
        # Off the frame and the unseen part, a shrunk tile is the source image region itself.
        oy, ox = in_context.context_origins[c, j]
        source = random_images()[in_context.indices[c, j]][oy : oy + 22, ox : ox + 21]
        np.testing.assert_array_equal(in_context.context[c, j], source)
        partial += int(np.any(got == 0.5))
    assert partial > 0  # border units: part of their window is grey inside the frame
    assert tile_view(in_context) == {
        "tile_view": "context",
        "context": {
            "size": [22, 21],
            "image": [22, 21],
            "origins": in_context.context_origins.tolist(),
            "zoom": 4.0,
        },
    }
    assert tile_view(max_activating_patches(*_small_first(), k=2, context=False)) == {
        "tile_view": "patch",
        "context": None,
    }


def _small_first():
    return seeded_small(), "first", random_images()


def test_context_views_sit_inside_the_same_frame(in_context):
    views = np.random.default_rng(1).random(in_context.patches.shape[:4] + (1,), np.float32)
    grid, geometry = patch_grid(in_context, views)
    assert geometry["cols"] == 6 and geometry["tile"] == [88, 84]
    rf = in_context.receptive_field
    for c, j in np.ndindex(5, 3):
        # The view (grey) is pasted at the window's place in a neutral region.
        oy, ox = in_context.context_origins[c, j]
        top, left, bottom, right = rf.window(*in_context.positions[c, j])
        canvas = np.full((22 + 26, 21 + 26, 3), 0.5, np.float32)  # room for any window
        canvas[top - oy + 13 : bottom - oy + 13, left - ox + 13 : right - ox + 13] = views[c, j]
        content = canvas[13:-13, 13:-13]
        expected = reference_context_tile(in_context, c, j, content, 4, unseen=-1)
        # The view tile has no unseen marking: where the reference marked it, the view stays.
        expected = np.where(expected == -1, np.repeat(np.repeat(content, 4, 0), 4, 1), expected)
        np.testing.assert_array_equal(tile(grid, c, 2 * j + 1, (88, 84), 1), expected)


def test_small_fields_get_context_and_large_ones_their_patch():
    keras.utils.set_random_seed(0)
    i = keras.Input((30, 30, 1))
    small = L.Conv2D(2, 3, name="small")(i)
    big = L.Conv2D(2, 25, name="big")(i)
    model = keras.Model(i, [small, big])
    images = np.random.default_rng(2).random((12, 30, 30, 1), dtype=np.float32)
    miner = PatchMiner(model, ["small", "big"], k=4)
    miner.update(images)
    small_top, big_top = miner.results()
    # 3 px < 24 px: context, a 12x12 region (max(4 x 3, 10)) at x7 -> 84 px, in colour.
    grid, geometry = patch_grid(small_top)
    assert tile_view(small_top)["tile_view"] == "context" and geometry["tile"] == [84, 84]
    assert grid.shape == (2 * 85 + 1, 4 * 85 + 1, 3)
    # 25 px >= max(24, 30 / 4): the patch alone, 25 px at x2, one channel as the data.
    grid, geometry = patch_grid(big_top)
    assert tile_view(big_top)["tile_view"] == "patch" and geometry["tile"] == [50, 50]
    assert big_top.context is None and grid.shape == (2 * 51 + 1, 4 * 51 + 1, 1)


def area_weights(n_in, n_out):
    """(n_out, n_in): output pixel o averages input [o f, (o + 1) f), f = n_in / n_out, each
    input pixel weighted by the length it overlaps."""
    f = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        for i in range(int(o * f), int(np.ceil((o + 1) * f))):
            w[o, i] = min((o + 1) * f, i + 1) - max(o * f, i)
    return w / f


def test_a_large_region_is_shrunk_to_96_px():
    keras.utils.set_random_seed(0)
    i = keras.Input((300, 300, 1))
    model = keras.Model(i, L.Conv2D(1, 30, strides=10, name="c")(i))
    images = np.random.default_rng(3).random((3, 300, 300, 1), dtype=np.float32)
    top = max_activating_patches(model, "c", images, k=2)
    # 30 px < 300 / 4: a 120 px region (4 x 30), shrunk by 0.8 to 96 px.
    assert top.context.shape == (1, 2, 120, 120, 1) and context_zoom((120, 120)) == 0.8
    grid, geometry = patch_grid(top)
    assert geometry["tile"] == [96, 96]
    for j in range(2):
        got = tile(grid, 0, j, (96, 96), 1)
        oy, ox = top.context_origins[0, j]
        wt, wl, wb, wr = np.array(top.receptive_field.window(*top.positions[0, j]))
        t, l, b, r = np.round(np.array([wt - oy, wl - ox, wb - oy, wr - ox]) * 0.8).astype(int)
        yellow, black = np.float32(FRAME[0]), np.float32(FRAME[2])
        np.testing.assert_array_equal(got[t - 1, l - 1 : r + 1], np.tile(yellow, (r - l + 2, 1)))
        np.testing.assert_array_equal(got[b + 2, l - 3 : r + 3], np.tile(black, (r - l + 6, 1)))
        # Off the frame: the whole region, each tile pixel the area-weighted mean of the
        # 1.25 x 1.25 image pixels it covers.
        box = area_weights(120, 96) @ top.context[0, j, ..., 0] @ area_weights(120, 96).T
        keep = np.ones((96, 96), bool)
        keep[t - 3 : b + 3, l - 3 : r + 3] = False
        np.testing.assert_allclose(got[..., 0][keep], box[keep], atol=1e-5)
