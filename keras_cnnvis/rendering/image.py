"""Rendering helpers: normalise arrays to [0, 1], tile them into labelled grids, colour maps,
overlays, PNG encoding and matplotlib display for notebooks. Nothing here touches a model.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import cv2
import numpy as np


def normalize(
    x: np.ndarray, mode: str = "minmax", axis: tuple | None = None, eps: float = 1e-12
) -> np.ndarray:
    """Maps values to [0, 1].

    Example:

    ```python
    normalize(np.array([-2.0, 0.0, 1.0]), mode="symmetric")  # [0.0, 0.5, 0.75]
    ```

    Args:
        x: any float array.
        mode: `"minmax"` maps min..max to 0..1; `"symmetric"` maps -m..m to 0..1 with
            m = max |x|, so zero is mid-grey. Defaults to `"minmax"`.
        axis: axes over which the statistics are taken (others are normalised
            independently), e.g. `(1, 2, 3)` for per-image. Defaults to None (all).
        eps: constant arrays map to 0.5 rather than dividing by ~0. Defaults to 1e-12.

    Returns:
        A float32 array of the same shape in [0, 1]; NaN becomes 0.
    """
    x = np.asarray(x, dtype=np.float32)
    finite = np.where(np.isfinite(x), x, np.nan)
    with warnings.catch_warnings():  # all-NaN slices are expected here: they map to 0
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        return _normalize(x, finite, mode, axis, eps)


def _normalize(x, finite, mode, axis, eps) -> np.ndarray:
    if mode == "minmax":
        lo = np.nanmin(finite, axis=axis, keepdims=True) if finite.size else 0.0
        hi = np.nanmax(finite, axis=axis, keepdims=True) if finite.size else 1.0
        lo = np.nan_to_num(lo)
        hi = np.nan_to_num(hi)
        span = hi - lo
        out = np.where(span > eps, (x - lo) / np.where(span > eps, span, 1.0), 0.5)
    elif mode == "symmetric":
        m = np.nan_to_num(np.nanmax(np.abs(finite), axis=axis, keepdims=True))
        out = np.where(m > eps, 0.5 + 0.5 * x / np.where(m > eps, m, 1.0), 0.5)
    else:
        raise ValueError(f"Unknown normalize mode '{mode}'; use 'minmax' or 'symmetric'.")
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


def upscale(tiles: np.ndarray, factor: int) -> np.ndarray:
    """Enlarges `(N, H, W, C)` tiles by an integer factor with nearest-neighbour pixels."""
    if factor <= 1:
        return tiles
    return np.repeat(np.repeat(tiles, factor, axis=1), factor, axis=2)


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for `n` tiles: `cols` given, or a near-square layout."""
    if n <= 0:
        return 0, 0
    cols = int(cols) if cols else int(np.ceil(np.sqrt(n)))
    cols = max(1, min(cols, n))
    return int(np.ceil(n / cols)), cols


def tile_grid(
    tiles: np.ndarray,
    cols: int | None = None,
    pad: int = 1,
    pad_value: float = 1.0,
    scale: int = 1,
) -> np.ndarray:
    """Tiles `(N, H, W[, C])` images into one grid image, row-major.

    Tile `(r, c)` starts at pixel `(pad + r * (H*scale + pad), pad + c * (W*scale + pad))`.

    Example:

    ```python
    grid = tile_grid(np.random.rand(10, 5, 5, 3), cols=5, scale=4)  # (2*21+1, 5*21+1, 3)
    ```

    Args:
        tiles: the tiles, values in [0, 1].
        cols: tiles per row. Defaults to None (near-square).
        pad: pixels between and around tiles. Defaults to 1.
        pad_value: the padding's value. Defaults to 1.0 (white).
        scale: integer nearest-neighbour enlargement of each tile. Defaults to 1.

    Returns:
        A float32 `(rows*(H*scale+pad)+pad, cols*(W*scale+pad)+pad, C)` array.
    """
    tiles = np.asarray(tiles, dtype=np.float32)
    if tiles.ndim == 3:
        tiles = tiles[..., None]
    if tiles.ndim != 4 or len(tiles) == 0:
        raise ValueError(f"tile_grid needs a non-empty (N, H, W[, C]) array; got {tiles.shape}.")
    tiles = upscale(tiles, int(scale))
    n, h, w, c = tiles.shape
    rows, cols = grid_shape(n, cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        out[y : y + h, x : x + w] = tiles[i]
    return out


def auto_scale(tile_size: int, target: int = 32, max_scale: int = 16) -> int:
    """An integer factor that brings small tiles (e.g. 3x3 kernels) to about `target` px."""
    return int(max(1, min(max_scale, round(target / max(1, tile_size)))))


def colormap(values: np.ndarray, name: str = "jet") -> np.ndarray:
    """Colours a `(..., H, W)` array in [0, 1] with a matplotlib colormap → `(..., H, W, 3)`."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap(np.clip(np.asarray(values, np.float32), 0, 1))[..., :3].astype(np.float32)


def resize(images: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resizes `(H, W[, C])` or `(N, H, W[, C])` float images to `size = (height, width)`."""
    images = np.asarray(images, dtype=np.float32)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    h, w = int(size[0]), int(size[1])

    def one(img):
        out = cv2.resize(img, (w, h), interpolation=interp)
        return out[..., None] if img.ndim == 3 and out.ndim == 2 else out

    if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4)):
        return one(images)
    return np.stack([one(img) for img in images])


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "jet"
) -> np.ndarray:
    """Blends a colour-mapped heatmap over an image.

    Args:
        image: `(H, W, C)` float image in [0, 1] (C = 1 or 3).
        heatmap: `(h, w)` map in [0, 1]; resized to the image if needed.
        alpha: the heatmap's weight. Defaults to 0.5.
        cmap: matplotlib colormap name. Defaults to `"jet"`.

    Returns:
        A float32 `(H, W, 3)` image in [0, 1].
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.shape != image.shape[:2]:
        heatmap = resize(heatmap, image.shape[:2])
    colored = colormap(heatmap, cmap)
    return np.clip((1 - alpha) * image[..., :3] + alpha * colored, 0, 1).astype(np.float32)


def figure_to_array(fig) -> np.ndarray:
    """Renders a matplotlib `Figure` with the Agg canvas into a float32 RGB array in [0, 1].

    No display and no pyplot state; the figure keeps the canvas, so its transforms can be
    read after the call (e.g. where a data point landed in pixels).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[..., :3].astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Converts a [0, 1] float image to uint8 (NaN → 0)."""
    image = np.nan_to_num(np.asarray(image, np.float32), nan=0.0)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Encodes a `(H, W[, C])` image (uint8, or float in [0, 1]) as PNG bytes (RGB order)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = image[..., ::-1]
    elif image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., [2, 1, 0, 3]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"Could not encode an image of shape {image.shape} as PNG.")
    return buf.tobytes()


def save_png(path: str, image: np.ndarray) -> None:
    """Writes an image to a PNG file (used by the CLI; core functions never write)."""
    with open(path, "wb") as f:
        f.write(encode_png(image))


def draw_text(
    image: np.ndarray, text: str, xy: tuple[int, int], color=(0.0, 0.0, 0.0), size: float = 0.35
) -> np.ndarray:
    """Writes a short label onto a float `(H, W, 3)` image in [0, 1] (a copy is returned).

    Args:
        image: the image.
        text: the label (ASCII).
        xy: the text's bottom-left corner `(x, y)` in pixels.
        color: RGB colour in [0, 1]. Defaults to black.
        size: font scale. Defaults to 0.35.

    Returns:
        A float32 copy of the image with the text drawn.
    """
    canvas = np.ascontiguousarray(to_uint8(image))
    rgb = tuple(int(round(255 * c)) for c in color)
    cv2.putText(
        canvas, text, (int(xy[0]), int(xy[1])), cv2.FONT_HERSHEY_SIMPLEX, size, rgb, 1, cv2.LINE_AA
    )
    return canvas.astype(np.float32) / 255.0


def outline_tiles(
    grid: np.ndarray,
    indices: Sequence[int],
    tile: tuple[int, int],
    cols: int,
    pad: int = 1,
    color: tuple = (1.0, 0.0, 0.0),
    width: int = 1,
) -> np.ndarray:
    """Draws a coloured frame around chosen tiles of a grid made by `tile_grid`.

    Args:
        grid: the grid image `(H, W, C)`; grayscale grids are turned RGB.
        indices: tile indices to frame (row-major).
        tile: the tile's `(height, width)` in the grid, after scaling.
        cols: tiles per row of the grid.
        pad: the grid's padding. Defaults to 1.
        color: RGB frame colour in [0, 1]. Defaults to red.
        width: frame width in pixels (drawn inside the tile). Defaults to 1.

    Returns:
        A float32 RGB copy of the grid with the frames drawn.
    """
    out = np.asarray(grid, np.float32).copy()
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    h, w = tile
    for i in indices:
        r, c = divmod(int(i), cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        for k in range(width):
            out[y + k, x : x + w] = color
            out[y + h - 1 - k, x : x + w] = color
            out[y : y + h, x + k] = color
            out[y : y + h, x + w - 1 - k] = color
    return out


def show(image: np.ndarray, title: str | None = None, ax=None, cmap: str | None = None):
    """Shows an image (or a 2-D map) inline with matplotlib, e.g. in a notebook.

    Example:

    ```python
    show(filter_grid(model, "conv1"), title="conv1 filters")
    ```

    Args:
        image: `(H, W)` map or `(H, W, C)` image in [0, 1].
        title: axes title. Defaults to None.
        ax: matplotlib axes to draw into. Defaults to None (a new figure).
        cmap: colormap for 2-D maps. Defaults to None (matplotlib's default, grey for 1 channel).

    Returns:
        The matplotlib axes.
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image, np.float32)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
        cmap = cmap or "gray"
    ax.imshow(
        np.clip(image, 0, 1) if image.ndim == 3 else image, cmap=cmap, interpolation="nearest"
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def display_channels(images: np.ndarray) -> np.ndarray:
    """Images reduced to channels an image file can show: 1 and 3 channels are kept,
    2 channels show the first, more than 3 the first three as RGB (a 4th channel of
    model input is data, not transparency)."""
    images = np.asarray(images)
    if images.ndim < 3 or images.shape[-1] in (1, 3):
        return images
    return images[..., :1] if images.shape[-1] == 2 else images[..., :3]


def display_images(images: np.ndarray, per_image: bool = True) -> np.ndarray:
    """Model-input images `(..., H, W, C)` as displayable float images in [0, 1].

    Data already in [0, 1] is kept, 0..255 data is divided by 255, anything else is
    min-max scaled (per image, or over the whole array so tiles compare). Channels are
    reduced with `display_channels`; NaN becomes 0.

    Example:

    ```python
    shown = display_images(np.round(x * 255))  # equals x (up to rounding) for x in [0, 1]
    ```

    Args:
        images: channels-last images of any range.
        per_image: min-max scale each image separately (over its last three axes) when
            the data is neither [0, 1] nor 0..255. Defaults to True.

    Returns:
        A float32 array of the same leading shape with 1 or 3 channels, in [0, 1].
    """
    x = display_channels(np.asarray(images, np.float32))
    finite = x[np.isfinite(x)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        out = x
    elif lo >= 0.0 and hi <= 255.0:
        out = x / 255.0
    else:
        out = normalize(
            x, axis=tuple(range(x.ndim - 3, x.ndim)) if per_image and x.ndim >= 3 else None
        )
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)
