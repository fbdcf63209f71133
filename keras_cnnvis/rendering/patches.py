"""Drawing max-activating patches: one grid with a row per channel and a column per rank (with
the unit's view beside each patch), on one display scale for the whole grid. Patches of a small
receptive field are drawn in context: the image region around them, enlarged, the field framed.
"""

from __future__ import annotations

import cv2
import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.patches.mining import MaxPatches, seen_slices, window_band

CONTEXT_TILE = 88
"""Context regions up to `MAX_CONTEXT_TILE` px are enlarged by an integer factor to about
this many pixels ..."""

MAX_CONTEXT_TILE = 96
"""... larger ones are shrunk to this many pixels."""

FRAME = ((1.0, 0.85, 0.0), (1.0, 0.85, 0.0), (0.0, 0.0, 0.0))
"""The receptive-field frame drawn around a field in its context: one pixel of each colour,
from the field outwards (yellow edged in black reads on dark and light images)."""


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


def context_zoom(size: tuple[int, int]) -> float:
    """Tile pixels per image pixel for a context region of `size`: an integer enlargement
    to about `CONTEXT_TILE` px, or a reduction to `MAX_CONTEXT_TILE` px for a larger region."""
    side = max(size)
    if side > MAX_CONTEXT_TILE:
        return MAX_CONTEXT_TILE / side
    return float(image.auto_scale(side, target=CONTEXT_TILE))


def context_boxes(result: MaxPatches) -> tuple[np.ndarray, np.ndarray]:
    """Where each peak unit lies in its context region.

    Returns:
        `(windows, seen)`: int64 `(n_channels, k, 4)` `(top, left, bottom, right)` in
        region pixels of the unit's theoretical window and of the pixels it sees, both
        clipped to the region (the seen box is empty for a unit that sees only padding).
    """
    rf = result.receptive_field
    h, w = result.context.shape[2:4]
    units = result.positions.reshape(-1, 2)
    windows = np.array([rf.window(r, c) for r, c in units], np.int64).reshape(result.boxes.shape)
    shift = np.concatenate([result.context_origins] * 2, axis=-1)
    limit = np.array([h, w, h, w])
    return np.clip(windows - shift, 0, limit), np.clip(result.boxes - shift, 0, limit)


def _frame(tile: np.ndarray, box: np.ndarray) -> None:
    """Draws `FRAME` around `box` (tile pixels, exclusive ends) outside it, clipped to the tile."""
    h, w = tile.shape[:2]
    t, l, b, r = (int(v) for v in box)
    for ring, colour in enumerate(FRAME, start=1):
        y0, y1, x0, x1 = t - ring, b + ring - 1, l - ring, r + ring - 1
        cols, rows = slice(max(x0, 0), min(x1 + 1, w)), slice(max(y0, 0), min(y1 + 1, h))
        for y in (y0, y1):
            if 0 <= y < h:
                tile[y, cols] = colour
        for x in (x0, x1):
            if 0 <= x < w:
                tile[rows, x] = colour


def _context_tiles(result: MaxPatches, views: np.ndarray | None, unseen: float) -> np.ndarray:
    """float32 `(n_channels, cols, H, W, 3)`: each context region (and view) at tile size,
    with the window part the unit does not see in `unseen` grey and the window framed."""
    shown = display_range(result.context)
    shown = np.repeat(shown, 3, -1) if shown.shape[-1] == 1 else shown.copy()
    windows, seen = context_boxes(result)
    band = window_band(result.receptive_field)  # the views' part of each window
    n_ch, k, h, w = shown.shape[:4]
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    tiles = [shown]
    if views is not None:
        views = np.asarray(views, np.float32)
        views = np.repeat(views[..., :1], 3, -1) if views.shape[-1] != 3 else views
        tiles.append(np.full_like(shown, 0.5))
    for c, j in np.ndindex(n_ch, k):
        t, l, b, r = windows[c, j]
        inside = (ys >= t) & (ys < b) & (xs >= l) & (xs < r)
        st, sl, sb, sr = seen[c, j]
        sees = (ys >= st) & (ys < sb) & (xs >= sl) & (xs < sr)
        shown[c, j][inside & ~sees] = unseen
        if views is not None:
            wt, wl = np.asarray(result.receptive_field.window(*result.positions[c, j])[:2])
            wt, wl = wt + band[0][0], wl + band[1][0]  # where the view's first pixel lies
            vt, vl = wt - result.context_origins[c, j, 0], wl - result.context_origins[c, j, 1]
            tiles[1][c, j, t:b, l:r] = views[c, j, t - vt : b - vt, l - vl : r - vl]
    tiles = np.stack(tiles, axis=2).reshape((n_ch, -1, h, w, 3))
    zoom = context_zoom((h, w))
    flat = tiles.reshape((-1, h, w, 3))
    if zoom >= 1:
        flat = image.upscale(flat, int(zoom))
    else:
        size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
        flat = np.stack([cv2.resize(t, size, interpolation=cv2.INTER_AREA) for t in flat])
    per_tile = np.repeat(windows, tiles.shape[1] // k, axis=1).reshape(-1, 4)
    for tile, box in zip(flat, np.round(per_tile * zoom)):
        _frame(tile, box)
    return flat.reshape(tiles.shape[:2] + flat.shape[1:])


def tile_view(result: MaxPatches) -> dict:
    """What the tiles of `patch_grid(result)` show, for the log record: `{"tile_view":
    "patch"` or `"context", "context": None` or `{"size": [h, w], "image": [h, w],
    "origins": [[[top, left] x k] per channel], "zoom": tile pixels per image pixel}}`."""
    if result.context is None:
        return {"tile_view": "patch", "context": None}
    size = result.context.shape[2:4]
    return {
        "tile_view": "context",
        "context": {
            "size": [int(v) for v in size],
            "image": [int(v) for v in result.receptive_field.input_size],
            "origins": result.context_origins.tolist(),
            "zoom": context_zoom(size),
        },
    }


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

    When the result holds context regions (a field small next to the image, see
    `keras_cnnvis.patches.context_size`), each tile is the region around the patch,
    enlarged to about `CONTEXT_TILE` px (by an integer factor; larger regions are shrunk
    to `MAX_CONTEXT_TILE`), with the unit's window framed (`FRAME`) and the part of the
    window the unit does not see in the `unseen` grey; a view tile is neutral grey with
    the view inside the same frame. Otherwise each tile is the unit's window alone.

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
        target_tile: small patches (without context) are enlarged by an integer factor
            to about this many pixels. Defaults to 48.
        unseen: display value (0..1) of the pixels the unit does not see, whatever the
            data's range. Defaults to None (the patches' own fill, scaled with the data;
            0.5 in context tiles).

    Returns:
        `(grid, geometry)`: a float32 `(H, W, C)` image in [0, 1] and the grid geometry
        `{"rows", "cols", "tile": [h, w], "pad", "scale"}` of the log format.
    """
    if result.context is not None:
        patches = _context_tiles(result, views, 0.5 if unseen is None else float(unseen))
        scale = 1
    else:
        patches = display_range(result.patches)
        n_ch, k = patches.shape[:2]
        if unseen is not None:
            patches = np.where(seen_mask(result)[..., None], patches, np.float32(unseen))
        if views is not None:
            views = np.asarray(views, np.float32)
            if views.shape[-1] != patches.shape[-1]:
                views = np.broadcast_to(views[..., :1], patches.shape)
            patches = np.stack([patches, views], axis=2)
            patches = patches.reshape((n_ch, 2 * k) + patches.shape[3:])
        scale = image.auto_scale(max(patches.shape[2:4]), target=target_tile)
    n_ch, cols, th, tw = patches.shape[:4]
    grid = image.tile_grid(patches.reshape((-1,) + patches.shape[2:]), cols, pad, scale=scale)
    geometry = {
        "rows": n_ch,
        "cols": cols,
        "tile": [th * scale, tw * scale],
        "pad": pad,
        "scale": 1,
    }
    return grid, geometry
