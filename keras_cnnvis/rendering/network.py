"""The thumbnails of the Network page: every shown channel of every layer, downsampled and
packed into one grayscale atlas image per probe (zero is mid-grey; the page colours it).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

PAD = 1


def thumbnail(maps: np.ndarray, size: int) -> np.ndarray:
    """Area-downsamples `(H, W, C)` maps so the longer side is at most `size` (integer
    factor, aspect kept); smaller maps are returned as they are."""
    h, w = maps.shape[:2]
    factor = max(1, math.ceil(max(h, w) / size))
    if factor == 1:
        return maps.astype(np.float32)
    th, tw = math.ceil(h / factor), math.ceil(w / factor)
    out = [
        cv2.resize(maps[..., c], (tw, th), interpolation=cv2.INTER_AREA)
        for c in range(maps.shape[-1])
    ]
    return np.stack(out, axis=-1).astype(np.float32)


def symmetric_bytes(maps: np.ndarray, scale: float) -> np.ndarray:
    """Maps values to 0..255 with `-scale -> 0`, `0 -> 128`, `scale -> 255` (clipped)."""
    if not scale > 0:
        return np.full(maps.shape, 128, np.uint8)
    v = 127.5 + 127.5 * np.clip(np.nan_to_num(maps / scale), -1.0, 1.0)
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def network_atlas(
    maps: Sequence[np.ndarray | None],
    size: int = 32,
    width: int = 1024,
    max_cols: int = 16,
) -> tuple[np.ndarray, list, list]:
    """Packs the shown channels of every layer into one atlas per probe.

    Each layer is a block of tiles (up to `max_cols` per row, in the given channel order);
    blocks are placed on shelves `width` pixels wide. A tile is the channel's map area-
    downsampled to at most `size` pixels, scaled by the layer's largest |value| in that
    probe (see `symmetric_bytes`).

    Example:

    ```python
    atlases, blocks, scales = network_atlas([maps_conv1, maps_conv2, None])
    ```

    Args:
        maps: per layer, the shown channels `(N, H, W, k)` for N probes, or None (a layer
            without feature maps: no block).
        size: the longest tile side. Defaults to 32.
        width: the atlas width in pixels. Defaults to 1024.
        max_cols: tiles per block row. Defaults to 16.

    Returns:
        `(atlases, blocks, scales)`: uint8 `(N, H, W, 1)` atlases; per layer a block dict
        `{"x", "y", "cols", "tile": [h, w], "pad"}` (tile `i` sits at `x + (i % cols) *
        (w + pad)`, `y + (i // cols) * (h + pad)`) or None; per layer the per-probe scales
        (None without a block).
    """
    tiles, blocks, scales = [], [], []
    x = y = shelf = 0
    for m in maps:
        if m is None or m.ndim != 4 or m.shape[-1] == 0:
            tiles.append(None)
            blocks.append(None)
            scales.append(None)
            continue
        small = np.stack([thumbnail(p, size) for p in m])
        n, th, tw, k = small.shape
        cols = min(k, max_cols)
        rows = math.ceil(k / cols)
        bw, bh = cols * (tw + PAD), rows * (th + PAD)
        if x and x + bw > width:
            x, y, shelf = 0, y + shelf, 0
        blocks.append({"x": x, "y": y, "cols": cols, "tile": [th, tw], "pad": PAD})
        s = [float(np.max(np.abs(np.nan_to_num(p)))) for p in m]
        scales.append(s)
        tiles.append(small)
        x += bw
        shelf = max(shelf, bh)
    n = next((len(t) for t in tiles if t is not None), 0)
    height = max(y + shelf, 1)
    wide = max([b["x"] + b["cols"] * (b["tile"][1] + PAD) for b in blocks if b] or [1])
    atlas = np.full((n, height, wide, 1), 255, np.uint8)
    for small, block, s in zip(tiles, blocks, scales):
        if small is None:
            continue
        th, tw = block["tile"]
        for i in range(small.shape[-1]):
            r, c = divmod(i, block["cols"])
            top, left = block["y"] + r * (th + PAD), block["x"] + c * (tw + PAD)
            for p in range(n):
                atlas[p, top : top + th, left : left + tw, 0] = symmetric_bytes(
                    small[p, :, :, i], s[p]
                )
    return atlas, blocks, scales
