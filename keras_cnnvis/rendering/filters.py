"""Drawing filters: the tiles of `keras_cnnvis.weights.filters.filter_tiles` as one grid image,
with the grid geometry the log format records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from keras_cnnvis.rendering import image

if TYPE_CHECKING:
    from keras_cnnvis.weights.filters import FilterTiles


def filter_tiles_grid(
    tiles: FilterTiles, pad: int = 1, scale: int | None = None
) -> tuple[np.ndarray, dict]:
    """Tiles a layer's filter tiles into one grid, `tiles.cols` tiles per row.

    Example:

    ```python
    grid, geometry = filter_tiles_grid(filter_tiles(model, "conv1"))
    ```

    Args:
        tiles: a `FilterTiles`.
        pad: white pixels between and around tiles. Defaults to 1.
        scale: integer enlargement of each kernel pixel. Defaults to None (about 32 px
            per tile).

    Returns:
        `(grid, geometry)`: a float32 `(H, W, C)` image in [0, 1] and the grid geometry
        `{"rows", "cols", "tile": [h, w], "pad", "scale"}` of the log format.
    """
    if scale is None:
        scale = image.auto_scale(max(tiles.kernel_size))
    grid = image.tile_grid(tiles.tiles, cols=tiles.cols, pad=pad, scale=scale)
    geometry = {
        "rows": tiles.rows,
        "cols": tiles.cols,
        "tile": [tiles.kernel_size[0] * scale, tiles.kernel_size[1] * scale],
        "pad": pad,
        "scale": 1,
    }
    return grid, geometry
