"""Drawing filter health: the filter grid with flagged filters outlined (one colour per flag)
and the one-page PNG report of `cnnvis health`. Floats in [0, 1]; nothing is written here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.filters import filter_tiles_grid
from keras_cnnvis.weights.filters import filter_tiles
from keras_cnnvis.weights.health import HealthReport, LayerHealth

FLAG_COLORS = {
    "non_finite": (1.0, 0.0, 1.0),  # magenta
    "not_moving": (0.0, 0.75, 0.75),  # cyan
    "dead": (0.0, 0.25, 1.0),  # blue
    "saturated": (1.0, 0.6, 0.0),  # orange
    "noise_like": (0.9, 0.0, 0.0),  # red
}
"""Outline colour of each flag; a filter with several flags gets the first in this order."""

PAD = 1

VERDICT_COLORS = {
    "failing": (0.8, 0.0, 0.0),  # red: non-converged
    "frozen": (0.25, 0.35, 0.55),  # slate: not trained in this fit, neither good nor bad
    "findings": (0.75, 0.4, 0.0),  # amber: converging, with findings
    "fine": (0.0, 0.0, 0.0),
}
"""Colour of a layer's verdict line in the report picture (the Health page uses the same
four tones)."""


def verdict_color(health: LayerHealth) -> tuple[float, float, float]:
    """The colour of a layer's verdict: red when non-converged, slate when frozen, amber for
    findings on a converging layer, black otherwise (see `VERDICT_COLORS`)."""
    if not health.converged:
        return VERDICT_COLORS["failing"]
    if health.frozen:
        return VERDICT_COLORS["frozen"]
    return VERDICT_COLORS["findings" if health.problems else "fine"]


def health_grid(
    model: keras.Model,
    health: LayerHealth,
    max_filters: int | None = 64,
    channels: Sequence[int] | int | None = None,
    scale: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]] | tuple[None, None]:
    """The layer's filter grid as RGB with each flagged filter framed in its flag's colour.

    One tile per filter, near-square: RGB for 3 input channels, grayscale for 1 and for
    depthwise kernels; layers with other channel counts show each filter's first shown
    input channel (`geometry["mode"] == "compact"`). Tile `i` shows filter
    `geometry["filters"][i]`.

    Example:

    ```python
    grid, geometry = health_grid(model, report["conv1"])
    ```

    Args:
        model: the model the report was computed on.
        health: the layer's `LayerHealth`.
        max_filters: at most this many filters. Defaults to 64.
        channels: input channels for channel-mode layers (see `filter_tiles`). Defaults
            to None (the first 4).
        scale: integer enlargement. Defaults to None (about 32 px per tile).

    Returns:
        `(grid, geometry)`: float32 `(H, W, 3)` and the `grid` block for the JSON record;
        `(None, None)` for layers whose filters are not images (Dense on features).
    """
    if health.kind == "dense":
        return None, None
    tiles = filter_tiles(model, health.layer, channels, max_filters, "filter")
    shown = tiles
    if tiles.mode == "channels":  # one tile per filter (its first shown channel), near-square
        rows, cols = image.grid_shape(tiles.rows)
        shown = dataclasses.replace(
            tiles, tiles=tiles.tiles[:: tiles.cols], rows=rows, cols=cols, mode="compact"
        )
    grid, geometry = filter_tiles_grid(shown, PAD, scale)
    if grid.shape[-1] == 1:
        grid = np.repeat(grid, 3, axis=-1)
    tile, cols, mode = tuple(geometry["tile"]), shown.cols, shown.mode
    width = 1 if min(tile) < 12 else 2
    done: set[int] = set()
    for flag, color in FLAG_COLORS.items():
        indices = [i for i in health.flags.get(flag, []) if i not in done and i in tiles.filters]
        done.update(indices)
        if mode == "compact":
            positions = [tiles.filters.index(i) for i in indices]
        else:
            positions = [p for i in indices for p in tiles.tiles_of(i)]
        if positions:
            grid = image.outline_tiles(grid, positions, tile, cols, PAD, color, width)
    geometry.update(
        mode=mode,
        channel=tiles.channels[0] if mode == "compact" else None,
        filters=tiles.filters,
    )
    return grid.astype(np.float32), geometry


def text_block(
    lines: list[str], width: int, first_color=(0, 0, 0), size: float = 0.42, line_h: int = 16
) -> np.ndarray:
    """Lines of text on a white float `(H, width, 3)` block (first line in `first_color`)."""
    import cv2

    # uint8 canvas: OpenCV 5's putText draws only on 8-bit images.
    block = np.full((line_h * len(lines) + 6, width, 3), 255, np.uint8)
    for k, line in enumerate(lines):
        color = tuple(int(255 * c) for c in (first_color if k == 0 else (0, 0, 0)))
        cv2.putText(
            block,
            line,
            (4, line_h * (k + 1)),
            cv2.FONT_HERSHEY_SIMPLEX,
            size,
            color,
            1,
            cv2.LINE_AA,
        )
    return block.astype(np.float32) / 255.0


def _fit_width(grid: np.ndarray, width: int) -> np.ndarray:
    if grid.shape[1] > width:
        h = max(1, int(round(grid.shape[0] * width / grid.shape[1])))
        grid = image.resize(grid, (h, width), nearest=True)
    out = np.ones((grid.shape[0], width, 3), np.float32)
    out[:, : grid.shape[1]] = grid
    return out


def report_image(
    model: keras.Model, report: HealthReport, width: int = 720, max_filters: int = 64
) -> np.ndarray:
    """A one-page picture of a `HealthReport`: per layer, its verdict, key scores and the
    filter grid with flagged filters outlined (legend at the top).

    Example:

    ```python
    image.save_png("report.png", report_image(model, filter_health(model, probe=x)))
    ```

    Args:
        model: the model the report was computed on.
        report: the `HealthReport`.
        width: image width in pixels. Defaults to 720.
        max_filters: filters shown per layer. Defaults to 64.

    Returns:
        A float32 `(H, width, 3)` image in [0, 1].
    """
    legend = "outlines: " + ", ".join(
        f"{name.replace('_', '-')} ({c})"
        for name, c in zip(FLAG_COLORS, ("magenta", "cyan", "blue", "orange", "red"))
    )
    parts = [text_block(["keras-cnnvis filter health", legend], width)]
    for h in report.values():
        e = h.evidence
        kh, kw = h.kernel_size
        desc = f"{h.layer} ({h.layer_type}{f' {kh}x{kw}' if kh else ''}, {h.n_filters} filters)"
        scores = []
        if e.get("noise_like_fraction") is not None:
            scores.append(f"noise-like {e['noise_like_filters']}/{e['tested_filters']}")
        if e.get("dead_units") is not None:
            scores.append(f"dead {e['dead_units']}/{e['n_units']}")
        if e.get("mean_drift") is not None:
            scores.append(f"drift {e['mean_drift']:.3g}")
        alpha = e.get("spectral_alpha")
        if alpha is not None and np.isfinite(alpha):
            scores.append(f"alpha {alpha:.1f}")
        spike = e.get("spike_ratio")
        if spike is not None and np.isfinite(spike):
            scores.append(f"spike {spike:.2f}")
        lines = [f"{h.layer}: {h.verdict}", desc + ("  |  " + ", ".join(scores) if scores else "")]
        color = verdict_color(h)
        parts.append(text_block(lines, width, color))
        grid, _ = health_grid(model, h, max_filters=max_filters)
        if grid is not None:
            parts.append(_fit_width(grid, width))
        parts.append(np.full((6, width, 3), 1.0, np.float32))
    return np.concatenate(parts, axis=0)
