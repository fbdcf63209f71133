"""Convolution kernels as images: per-filter tiles and the filter grid (float arrays only).

A first layer with 3 input channels shows each filter as one RGB tile; deeper layers show
one grayscale tile per (filter, chosen input channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis import image
from keras_cnnvis.gradients import LayerInfo, find_layer

NORMALIZE_MODES = ("filter", "layer")


@dataclass
class FilterTiles:
    """Kernel tiles of one layer, ready to be tiled into a grid.

    Attributes:
        layer: the layer's path in the model.
        tiles: float32 `(n_tiles, kh, kw, C)` in [0, 1] (C = 3 in RGB mode, else 1),
            row-major over a `rows x cols` grid.
        rows, cols: the grid layout (RGB mode: near-square; channel mode: one row per
            filter, one column per shown input channel).
        mode: `"rgb"` or `"channels"`.
        filters: the filter (output channel) index of each grid row (channel mode) or
            tile (RGB mode).
        channels: the input channels shown (channel mode; all three in RGB mode).
        n_filters, in_channels: the layer's totals.
    """

    layer: str
    tiles: np.ndarray
    rows: int
    cols: int
    mode: str
    filters: list[int]
    channels: list[int]
    n_filters: int
    in_channels: int
    kernel_size: tuple[int, int] = field(default=(0, 0))


def conv_kernel(info: LayerInfo) -> np.ndarray:
    """The layer's kernel as a float32 `(kh, kw, in_channels, filters)` array.

    Raises:
        ValueError: if the layer has no 2-D convolution kernel.
    """
    layer = info.layer
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Stored as (kh, kw, filters, in_channels).
        return np.transpose(np.asarray(layer.kernel, np.float32), (0, 1, 3, 2))
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    ):
        return np.asarray(layer.kernel, np.float32)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k = np.asarray(layer.kernel, np.float32)  # (kh, kw, in, multiplier)
        kh, kw, cin, mult = k.shape
        # Output channel c*mult + m reads only input channel c; others are zero.
        full = np.zeros((kh, kw, cin, cin * mult), np.float32)
        for c in range(cin):
            full[:, :, c, c * mult : (c + 1) * mult] = k[:, :, c, :]
        return full
    if isinstance(layer, keras.layers.SeparableConv2D):
        k = np.asarray(layer.depthwise_kernel, np.float32)
        kh, kw, cin, mult = k.shape
        full = np.zeros((kh, kw, cin, cin * mult), np.float32)
        for c in range(cin):
            full[:, :, c, c * mult : (c + 1) * mult] = k[:, :, c, :]
        return full
    raise ValueError(
        f"Layer '{info.path}' ({type(layer).__name__}) has no 2-D convolution kernel; "
        "choose a Conv2D, Conv2DTranspose, DepthwiseConv2D or SeparableConv2D layer."
    )


def filter_tiles(
    model: keras.Model,
    layer: Any,
    channels: Sequence[int] | int | None = None,
    max_filters: int | None = 64,
    normalize: str = "filter",
) -> FilterTiles:
    """Turns a convolution layer's kernels into image tiles.

    With 3 input channels each filter becomes one RGB tile; otherwise each filter gives
    one grayscale tile per chosen input channel. Values are mapped symmetrically, so a
    zero weight is mid-grey, positive is brighter and negative darker.

    Example:

    ```python
    tiles = filter_tiles(model, "conv1")
    grid = image.tile_grid(tiles.tiles, cols=tiles.cols, scale=8)
    ```

    Args:
        model: a Keras model of any kind.
        layer: the convolution layer (name, path or object).
        channels: input channels to show in channel mode: a list of indices, or an int
            `k` for the first k. Defaults to None (the first 4).
        max_filters: show at most this many filters (the first ones). Defaults to 64.
        normalize: `"filter"` scales each filter by its own largest |weight|;
            `"layer"` uses one scale for the whole layer, so magnitudes compare.
            Defaults to `"filter"`.

    Returns:
        A `FilterTiles`.

    Raises:
        ValueError: for an unknown layer, a layer without a 2-D kernel, channel indices
            out of range or an unknown `normalize`.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}.")
    info = find_layer(model, layer)
    kernel = conv_kernel(info)
    kh, kw, cin, cout = kernel.shape
    n = cout if max_filters is None else min(cout, int(max_filters))
    filters = list(range(n))
    rgb = cin == 3
    if rgb:
        chosen = [0, 1, 2]
    elif channels is None or isinstance(channels, (int, np.integer)):
        chosen = list(range(min(cin, 4 if channels is None else int(channels))))
    else:
        chosen = [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < cin]
    if bad or not chosen:
        raise ValueError(
            f"Input channels {bad or chosen} are out of range for layer '{info.path}', "
            f"which has {cin} input channels (valid: 0..{cin - 1})."
        )
    k = kernel[:, :, chosen, :n]  # (kh, kw, c, n)
    k = np.transpose(k, (3, 2, 0, 1))  # (n, c, kh, kw)
    axis = (1, 2, 3) if normalize == "filter" else None
    k = image.normalize(k, mode="symmetric", axis=axis)
    if rgb:
        tiles = np.transpose(k, (0, 2, 3, 1))  # (n, kh, kw, 3)
        rows, cols = image.grid_shape(n)
    else:
        tiles = k.reshape(n * len(chosen), kh, kw, 1)
        rows, cols = n, len(chosen)
    return FilterTiles(
        layer=info.path,
        tiles=tiles.astype(np.float32),
        rows=rows,
        cols=cols,
        mode="rgb" if rgb else "channels",
        filters=filters,
        channels=chosen,
        n_filters=cout,
        in_channels=cin,
        kernel_size=(kh, kw),
    )


def filter_grid(
    model: keras.Model,
    layer: Any,
    channels: Sequence[int] | int | None = None,
    max_filters: int | None = 64,
    normalize: str = "filter",
    scale: int | None = None,
    pad: int = 1,
) -> np.ndarray:
    """The kernels of a convolution layer tiled into one image.

    Example:

    ```python
    grid = filter_grid(model, "conv1")   # (H, W, 3) floats in [0, 1]
    keras_cnnvis.image.show(grid)
    ```

    Args:
        model: a Keras model of any kind.
        layer: the convolution layer (name, path or object).
        channels: see `filter_tiles`. Defaults to None.
        max_filters: see `filter_tiles`. Defaults to 64.
        normalize: see `filter_tiles`. Defaults to `"filter"`.
        scale: integer enlargement of each kernel pixel. Defaults to None (about 32 px
            per tile).
        pad: white pixels between tiles. Defaults to 1.

    Returns:
        A float32 `(H, W, C)` grid in [0, 1] (C = 3 for RGB filters, else 1).
    """
    tiles = filter_tiles(model, layer, channels, max_filters, normalize)
    if scale is None:
        scale = image.auto_scale(max(tiles.kernel_size))
    return image.tile_grid(tiles.tiles, cols=tiles.cols, pad=pad, scale=scale)
