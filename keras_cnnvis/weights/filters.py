"""Weight layers as images: a layer's filters turned into tiles (RGB, grayscale, one per input
channel, depthwise, Dense on a flattened image) and tiled into a filter grid (floats only).

A first layer with 3 input channels shows each filter as one RGB tile; deeper layers show
one grayscale tile per (filter, chosen input channel); depthwise kernels one grayscale tile per
(input channel, multiplier); a Dense layer that sees the flattened image one tile per unit.
Reading the kernels themselves is `keras_cnnvis.weights.kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.filters import filter_tiles_grid
from keras_cnnvis.weights.kernels import (  # noqa: F401 (keras_cnnvis.filters exposed them all)
    KERNEL_KINDS,
    LayerKernel,
    check_tileable,
    conv_kernel,
    dense_image_shape,
    has_kernel,
    kernel_array,
    kernel_variable,
    layer_kernel,
    tileable_layers,
    weight_layers,
)

NORMALIZE_MODES = ("filter", "layer")
"""How `filter_tiles` scales weights to grey levels: per filter, or one scale per layer."""


@dataclass
class FilterTiles:
    """Kernel tiles of one layer, ready to be tiled into a grid.

    Attributes:
        layer: the layer's path in the model.
        tiles: float32 `(n_tiles, kh, kw, C)` in [0, 1] (C = 3 in RGB mode, else 1),
            row-major over a `rows x cols` grid.
        rows, cols: the grid layout (RGB and gray modes: near-square, one tile per
            filter; channel mode: one row per filter, one column per shown input channel).
        mode: `"rgb"`, `"gray"` or `"channels"`.
        filters: the filter (output channel) index of each grid row (channel mode) or
            tile (RGB and gray modes).
        channels: the input channels shown (channel mode; all three in RGB mode; for
            depthwise kernels the input channel each tile reads).
        n_filters, in_channels: the layer's totals (`in_channels` is the layer's input
            channels; for a Dense layer, the channels of the image it sees).
        kernel_size: `(kh, kw)` of a tile before scaling.
        kind: see `KERNEL_KINDS`.
        layer_type: the layer's class name.
        depth_multiplier: for depthwise kernels, else 0.
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
    kind: str = "conv"
    layer_type: str = "Conv2D"
    depth_multiplier: int = 0

    def tiles_of(self, filter_index: int) -> list[int]:
        """Grid positions (row-major tile indices) that show filter `filter_index`."""
        if filter_index not in self.filters:
            return []
        pos = self.filters.index(filter_index)
        if self.mode == "channels":
            return list(range(pos * self.cols, (pos + 1) * self.cols))
        return [pos]


def check_normalize(normalize: str) -> str:
    """Returns `normalize` if it is one of `NORMALIZE_MODES`.

    Raises:
        ValueError: for any other value.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}.")
    return normalize


def filter_tiles(
    model: keras.Model,
    layer: Any,
    channels: Sequence[int] | int | None = None,
    max_filters: int | None = 64,
    normalize: str = "filter",
) -> FilterTiles:
    """Turns a weight layer's filters into image tiles.

    With 3 input channels each filter becomes one RGB tile; with 1 input channel (and for
    depthwise kernels: one tile per (input channel, multiplier)) one grayscale tile;
    otherwise each filter gives one grayscale tile per chosen input channel. A Dense layer
    that sees the flattened image gives one tile of the image's size per unit. Values are
    mapped symmetrically, so a zero weight is mid-grey, positive is brighter and negative
    darker.

    Example:

    ```python
    tiles = filter_tiles(model, "conv1")
    grid = image.tile_grid(tiles.tiles, cols=tiles.cols, scale=8)
    ```

    Args:
        model: a Keras model of any kind.
        layer: the weight layer (name, path or object).
        channels: input channels to show in channel mode: a list of indices, or an int
            `k` for the first k. Defaults to None (the first 4).
        max_filters: show at most this many filters (the first ones). Defaults to 64.
        normalize: `"filter"` scales each filter by its own largest |weight|;
            `"layer"` uses one scale for the whole layer, so magnitudes compare.
            Defaults to `"filter"`.

    Returns:
        A `FilterTiles`.

    Raises:
        ValueError: for an unknown layer, a layer without a kernel, a Dense layer that
            does not see the image, channel indices out of range or an unknown
            `normalize`.
    """
    check_normalize(normalize)
    k = check_tileable(model, layer)
    n_all, kh, kw, cin = k.filters.shape
    n = n_all if max_filters is None else min(n_all, int(max_filters))
    filters = list(range(n))
    layer_in = int(k.raw_shape[2]) if k.kind == "depthwise" else cin
    mode = "rgb" if cin == 3 else "gray" if cin == 1 else "channels"
    if mode == "rgb":
        chosen = [0, 1, 2]
    elif mode == "gray":
        chosen = [k.input_channel(i) for i in filters] if k.kind == "depthwise" else [0]
    elif channels is None or isinstance(channels, (int, np.integer)):
        chosen = list(range(min(cin, 4 if channels is None else int(channels))))
    else:
        chosen = [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < layer_in]
    if bad or not chosen:
        raise ValueError(
            f"Input channels {bad or chosen} are out of range for layer '{k.path}', "
            f"which has {layer_in} input channels (valid: 0..{layer_in - 1})."
        )
    sel = k.filters[:n]  # (n, kh, kw, cin)
    if mode == "channels":
        sel = sel[..., chosen]
    if normalize == "filter":
        scaled = image.normalize(sel, mode="symmetric", axis=(1, 2, 3))
    else:  # one scale for the whole layer, shown filters or not
        finite = np.abs(k.filters[np.isfinite(k.filters)])
        m = float(finite.max()) if finite.size else 0.0
        with np.errstate(invalid="ignore"):
            scaled = 0.5 + 0.5 * sel / m if m > 1e-12 else np.full_like(sel, 0.5)
        scaled = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)
    if mode == "channels":
        tiles = np.transpose(scaled, (0, 3, 1, 2)).reshape(n * len(chosen), kh, kw, 1)
        rows, cols = n, len(chosen)
    else:
        tiles = scaled
        rows, cols = image.grid_shape(n)
    return FilterTiles(
        layer=k.path,
        tiles=tiles.astype(np.float32),
        rows=rows,
        cols=cols,
        mode=mode,
        filters=filters,
        channels=chosen,
        n_filters=n_all,
        in_channels=layer_in,
        kernel_size=(kh, kw),
        kind=k.kind,
        layer_type=k.layer_type,
        depth_multiplier=k.depth_multiplier,
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
    """The filters of a weight layer tiled into one image.

    Example:

    ```python
    grid = filter_grid(model, "conv1")   # (H, W, 3) floats in [0, 1]
    keras_cnnvis.rendering.image.show(grid)
    ```

    Args:
        model: a Keras model of any kind.
        layer: the weight layer (name, path or object): a 2-D convolution of any kind,
            or a Dense layer that sees the flattened image.
        channels: see `filter_tiles`. Defaults to None.
        max_filters: see `filter_tiles`. Defaults to 64.
        normalize: see `filter_tiles`. Defaults to `"filter"`.
        scale: integer enlargement of each kernel pixel. Defaults to None (about 32 px
            per tile).
        pad: white pixels between tiles. Defaults to 1.

    Returns:
        A float32 `(H, W, C)` grid in [0, 1] (C = 3 for RGB filters, else 1).

    Raises:
        ValueError: see `filter_tiles`.
    """
    tiles = filter_tiles(model, layer, channels, max_filters, normalize)
    return filter_tiles_grid(tiles, pad, scale)[0]
