"""Activation-map drawing (keras_cnnvis.rendering.activations): display scaling that keeps zero
black, grid layout and exact pixels, colormapped grids, and the old import paths."""

import numpy as np
import pytest

from keras_cnnvis.activations import ActivationMaps
from keras_cnnvis.rendering.activations import activation_grid, grid_geometry, scale_maps


def fixed_model_conv_maps():
    """The maps of test_activations.fixed_model's "conv" layer on arange(16) (4x4), by hand:
    relu(x), relu(-x) and relu(2x - 5) in index order."""
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    maps = np.stack([x, np.zeros_like(x), np.maximum(2 * x - 5, 0)], axis=-1)[None]
    return ActivationMaps("conv", maps, [0, 1, 2], 3, "index", maps.mean(axis=(0, 1, 2)))


def test_scale_maps_keeps_zero_black_and_stretches_signed_maps():
    maps = np.zeros((1, 1, 3, 3), np.float32)
    maps[0, 0, :, 0] = [0.0, 2.0, 4.0]  # non-negative: divided by the max
    maps[0, 0, :, 1] = [-1.0, 0.0, 3.0]  # signed: min..max
    # channel 2 all zero: black
    np.testing.assert_allclose(scale_maps(maps)[0, 0], [[0, 0, 0], [0.5, 0.25, 0], [1, 1, 0]])
    layer = scale_maps(maps, "layer")[0, 0]  # one range -1..4 over all shown maps
    np.testing.assert_allclose(layer[:, 0], [0.2, 0.6, 1.0])
    with pytest.raises(ValueError, match="normalize must be one of"):
        scale_maps(maps, "global")


def test_activation_grid_layout_and_pixels():
    conv = fixed_model_conv_maps()
    grids = activation_grid(conv)  # 3 maps of 4x4, x8 = 32 px tiles, 2x2 grid
    assert grids.shape == (1, 2 * 33 + 1, 2 * 33 + 1, 1)
    assert grid_geometry(conv) == {"rows": 2, "cols": 2, "tile": [32, 32], "pad": 1, "scale": 1}
    g = grids[0, ..., 0]
    # Tile 0 is x / 15; pixel (r, c) of the map fills an 8x8 block starting at 1 + 8r, 1 + 8c.
    assert g[1 + 8 * 2, 1 + 8 * 3] == pytest.approx(11 / 15)
    # Tile 2 (row 1, col 0) is relu(2x - 5) / 25; x = 15 at map pixel (3, 3).
    assert g[34 + 8 * 3, 1 + 8 * 3] == pytest.approx(1.0)
    assert g[34, 1] == 0.0
    assert np.all(grids[0, 33, :, 0] == 1.0)  # padding row between tile rows is white
    coloured = activation_grid(conv, cmap="viridis")
    assert coloured.shape == (1, 67, 67, 3)


def test_old_import_paths_give_the_renderers():
    import keras_cnnvis
    from keras_cnnvis import activations

    assert keras_cnnvis.activation_grid is activation_grid
    assert activations.activation_grid is activation_grid
    assert activations.grid_geometry is grid_geometry and activations.scale_maps is scale_maps
