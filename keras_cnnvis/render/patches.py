"""Drawing max-activating patches: one grid with a row per channel and a column per rank (with
the unit's view beside each patch), on one display scale for the whole grid.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.render import image
from keras_cnnvis.patches.mining import MaxPatches, seen_slices


def display_range(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] for display with one scale for the whole array, so tiles stay
    comparable (see `image.display_images`)."""
    return image.display_images(x, per_image=False)


def seen_mask(result: MaxPatches) -> np.ndarray:
    """bool `(n_channels, k, size_h, size_w)`: the window pixels each peak unit sees."""
    rf = result.receptive_field
    seen = np.zeros(result.patches.shape[:4], bool)
    for c, j in np.ndindex(*result.positions.shape[:2]):
        row, col = result.positions[c, j]
        where = seen_slices(rf, row, col, result.boxes[c, j])
        if where is not None:
            seen[c, j][where[1]] = True
    return seen


def patch_grid(
    result: MaxPatches,
    views: np.ndarray | None = None,
    pad: int = 1,
    target_tile: int = 48,
    unseen: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Renders max-activating patches as one grid: a row per channel, a column per rank.

    With `views` (e.g. guided backprop of the unit on each patch, same shape as the
    patches), each patch is followed by its view, so a row holds `2k` tiles.

    Example:

    ```python
    grid, geometry = patch_grid(max_activating_patches(model, "conv2", x_val, k=8))
    image.save_png("conv2_patches.png", grid)
    ```

    Args:
        result: the output of `max_activating_patches`.
        views: optional float `(n_channels, k, h, w, C)` maps in [0, 1] shown beside the
            patches. Defaults to None.
        pad: pixels between tiles. Defaults to 1.
        target_tile: small patches are enlarged by an integer factor to about this many
            pixels. Defaults to 48.
        unseen: display value (0..1) of the pixels the unit does not see, whatever the
            data's range. Defaults to None (the patches' own fill, scaled with the data).

    Returns:
        `(grid, geometry)`: a float32 `(H, W, C)` image in [0, 1] and the grid geometry
        `{"rows", "cols", "tile": [h, w], "pad", "scale"}` of the log format.
    """
    patches = display_range(result.patches)
    n_ch, k = patches.shape[:2]
    if unseen is not None:
        patches = np.where(seen_mask(result)[..., None], patches, np.float32(unseen))
    if views is not None:
        views = np.asarray(views, np.float32)
        if views.shape[-1] != patches.shape[-1]:
            views = np.broadcast_to(views[..., :1], patches.shape)
        patches = np.stack([patches, views], axis=2).reshape((n_ch, 2 * k) + patches.shape[2:])
    cols = patches.shape[1]
    th, tw = patches.shape[2:4]
    scale = image.auto_scale(max(th, tw), target=target_tile)
    tiles = patches.reshape((-1,) + patches.shape[2:])
    grid = image.tile_grid(tiles, cols=cols, pad=pad, scale=scale)
    geometry = {
        "rows": n_ch,
        "cols": cols,
        "tile": [th * scale, tw * scale],
        "pad": pad,
        "scale": 1,
    }
    return grid, geometry
