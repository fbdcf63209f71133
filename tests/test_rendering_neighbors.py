"""The neighbour grid: tile geometry and the frame colours (query blue, same class green,
other class red) read back at the tile corners."""

import numpy as np
import pytest

from keras_cnnvis.rendering.neighbors import OTHER, QUERY, SAME, neighbor_grid


def test_neighbor_grid_frames_by_class():
    q = np.zeros((2, 4, 4, 1), np.float32)
    ref = np.ones((3, 4, 4, 1), np.float32)
    grid, geo = neighbor_grid(
        q, np.array([0, 1]), ref, np.array([0, 1, 1]), np.array([[0, 1], [2, 0]]), target_tile=8
    )
    assert geo == {"rows": 2, "cols": 3, "tile": [8, 8], "pad": 1, "scale": 1}
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    corner = lambda r, c: tuple(grid[1 + r * 9, 1 + c * 9])  # noqa: E731
    assert corner(0, 0) == pytest.approx((0.1, 0.3, 1.0))  # query: blue
    assert corner(0, 1) == pytest.approx((0.0, 0.75, 0.0))  # same class: green
    assert corner(0, 2) == pytest.approx((0.9, 0.0, 0.0))  # other class: red
    assert corner(1, 1) == pytest.approx((0.0, 0.75, 0.0)) and corner(1, 2) == pytest.approx(
        (0.9, 0.0, 0.0)
    )
    assert tuple(grid[4, 4 + 9]) == (1.0, 1.0, 1.0)  # inside a neighbour tile: the image
    assert (QUERY, SAME, OTHER) == ((0.1, 0.3, 1.0), (0.0, 0.75, 0.0), (0.9, 0.0, 0.0))
