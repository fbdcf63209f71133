"""Drawing nearest neighbours: a row per query, the query framed blue, then its neighbours,
nearest first, framed green for the query's class and red otherwise.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.patches import display_range

SAME = (0.0, 0.75, 0.0)
OTHER = (0.9, 0.0, 0.0)
QUERY = (0.1, 0.3, 1.0)


def neighbor_grid(
    queries: np.ndarray,
    query_labels: np.ndarray,
    reference: np.ndarray,
    reference_labels: np.ndarray,
    indices: np.ndarray,
    pad: int = 1,
    target_tile: int = 48,
) -> tuple[np.ndarray, dict]:
    """Renders one row per query: the query (blue frame), then its neighbours, nearest
    first, framed green when they share the query's class and red when not.

    All tiles share one display scale (`display_range`), so brightness compares across
    the grid.

    Example:

    ```python
    nn = nearest_neighbors(model, x_val[:6], x_train, k=5)
    grid, geometry = neighbor_grid(x_val[:6], y_val[:6], x_train, y_train, nn.indices)
    ```

    Args:
        queries: query images `(Q, H, W, C)`.
        query_labels: their classes `(Q,)`.
        reference: reference images `(N, H, W, C)`.
        reference_labels: their classes `(N,)`.
        indices: `(Q, k)` neighbour indices into `reference`.
        pad: pixels between tiles. Defaults to 1.
        target_tile: small images are enlarged by an integer factor to about this many
            pixels. Defaults to 48.

    Returns:
        `(grid, geometry)`: a float32 RGB image in [0, 1] and
        `{"rows", "cols", "tile": [h, w], "pad", "scale"}`.
    """
    indices = np.asarray(indices)
    n_q, k = indices.shape
    tiles = np.concatenate([np.asarray(queries)[:, None], np.asarray(reference)[indices]], axis=1)
    tiles = display_range(tiles.reshape((-1,) + tiles.shape[2:]))
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    th, tw = tiles.shape[1:3]
    scale = image.auto_scale(max(th, tw), target=target_tile)
    grid = image.tile_grid(tiles, cols=k + 1, pad=pad, scale=scale)
    tile = (th * scale, tw * scale)
    width = max(1, min(tile) // 24)
    same = np.asarray(reference_labels)[indices] == np.asarray(query_labels)[:, None]
    cols = k + 1
    grid = image.outline_tiles(grid, [r * cols for r in range(n_q)], tile, cols, pad, QUERY, width)
    for flag, color in ((True, SAME), (False, OTHER)):
        chosen = [r * cols + 1 + j for r in range(n_q) for j in range(k) if same[r, j] == flag]
        grid = image.outline_tiles(grid, chosen, tile, cols, pad, color, width)
    return grid, {"rows": n_q, "cols": cols, "tile": list(tile), "pad": pad, "scale": 1}
