"""Draws activation maps: scales feature maps for display and tiles each probe image's maps into
one grid, and describes that grid's layout for the dashboard's JSON record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from keras_cnnvis.rendering import image

if TYPE_CHECKING:
    from keras_cnnvis.activations import ActivationMaps

MAP_NORMALIZE = ("map", "layer")


def check_normalize(normalize: str) -> None:
    """Raises ValueError unless `normalize` is one of `MAP_NORMALIZE`."""
    if normalize not in MAP_NORMALIZE:
        raise ValueError(f"normalize must be one of {MAP_NORMALIZE}; got {normalize!r}.")


def scale_maps(maps: np.ndarray, normalize: str = "map") -> np.ndarray:
    """Maps `(N, h, w, k)` activations to [0, 1] for display.

    Zero stays black when all values are >= 0 (ReLU outputs): values are divided by the
    maximum; maps with negative values are stretched from their minimum (or 0, whichever
    is lower) to their maximum. A map that is zero everywhere is black.

    Args:
        maps: feature maps.
        normalize: `"map"` (each map by its own range: shows every map's pattern) or
            `"layer"` (one range per image over all shown maps: shows which channels
            respond most). Defaults to `"map"`.

    Returns:
        float32 `(N, h, w, k)` in [0, 1].

    Raises:
        ValueError: for an unknown `normalize`.
    """
    check_normalize(normalize)
    x = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    axis = (1, 2) if normalize == "map" else (1, 2, 3)
    lo = np.minimum(x.min(axis=axis, keepdims=True), 0.0)
    hi = x.max(axis=axis, keepdims=True)
    span = hi - lo
    out = np.where(span > 1e-12, (x - lo) / np.where(span > 1e-12, span, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def activation_grid(
    maps: ActivationMaps,
    normalize: str = "map",
    cols: int | None = None,
    scale: int | None = None,
    pad: int = 1,
    cmap: str | None = None,
) -> np.ndarray:
    """One grid image per image: the shown feature maps of a layer, tiled row-major.

    Example:

    ```python
    grids = activation_grid(activation_maps(model, x[:2], "conv1")["conv1"])
    grids.shape   # (2, H, W, 1)
    ```

    Args:
        maps: an `ActivationMaps` from `activation_maps`.
        normalize: see `scale_maps`. Defaults to `"map"`.
        cols: tiles per row. Defaults to None (near-square).
        scale: integer enlargement of each map pixel. Defaults to None (about 32 px per
            tile for small maps, 1 for maps of 32 px or more).
        pad: white pixels between tiles. Defaults to 1.
        cmap: a matplotlib colormap name, or None for grayscale. Defaults to None.

    Returns:
        float32 `(N, H, W, C)` in [0, 1] (C = 1 in grayscale, 3 with a colormap).
    """
    scaled = scale_maps(maps.maps, normalize)  # (N, h, w, k)
    h, w = scaled.shape[1:3]
    if scale is None:
        scale = image.auto_scale(max(h, w))
    grids = []
    for one in scaled:
        tiles = np.transpose(one, (2, 0, 1))  # (k, h, w)
        tiles = image.colormap(tiles, cmap) if cmap else tiles[..., None]
        grids.append(image.tile_grid(tiles, cols=cols, pad=pad, scale=scale))
    return np.stack(grids).astype(np.float32)


def grid_geometry(
    maps: ActivationMaps, cols: int | None = None, scale: int | None = None, pad: int = 1
) -> dict:
    """The `grid` block of the `activations` JSON record for `activation_grid`'s layout."""
    h, w = maps.maps.shape[1:3]
    if scale is None:
        scale = image.auto_scale(max(h, w))
    rows, cols = image.grid_shape(len(maps.channels), cols)
    return {"rows": rows, "cols": cols, "tile": [h * scale, w * scale], "pad": pad, "scale": 1}
