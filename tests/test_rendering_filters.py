"""render.filters: the filter grid holds each tile at its place, enlarged pixel for pixel, and
records the geometry the dashboard reads."""

import keras
import numpy as np

from keras_cnnvis import filter_grid
from keras_cnnvis.rendering.filters import filter_tiles_grid
from keras_cnnvis.weights.filters import filter_tiles


def test_tiles_at_their_place_and_the_geometry():
    i = keras.Input((8, 8, 3))
    model = keras.Model(i, keras.layers.Conv2D(5, 3, name="c")(i))
    tiles = filter_tiles(model, "c")
    grid, geometry = filter_tiles_grid(tiles, pad=2)
    scale = 11  # about 32 px for 3x3 kernels
    assert geometry == {"rows": 2, "cols": 3, "tile": [33, 33], "pad": 2, "scale": 1}
    assert grid.shape == (2 * 35 + 2, 3 * 35 + 2, 3)
    for f in range(5):
        r, c = divmod(f, 3)
        y, x = 2 + r * 35, 2 + c * 35
        np.testing.assert_array_equal(
            grid[y : y + 33, x : x + 33], np.kron(tiles.tiles[f], np.ones((scale, scale, 1)))
        )
    assert np.all(grid[:2] == 1.0) and np.all(grid[2 + 35 :, 2 + 2 * 35 :] == 1.0)  # empty: white
    np.testing.assert_array_equal(filter_grid(model, "c", pad=2), grid)
    small, geometry = filter_tiles_grid(tiles, scale=2)
    assert small.shape == (2 * 7 + 1, 3 * 7 + 1, 3) and geometry["tile"] == [6, 6]
