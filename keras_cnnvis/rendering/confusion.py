"""Draws a confusion matrix: cells coloured by the fraction of each true class, with the counts
and class names, as a float RGB image (drawn directly with numpy and OpenCV, no matplotlib figure).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from keras_cnnvis.rendering import raster

_TITLE_PX, _AXIS_PX, _MARGIN = 16, 13, 10
_MAX_NAME_PX = 150  # longer class names are cut short with an ellipsis
_COLORBAR_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _cell_size(n: int) -> int:
    """Pixels per cell: 64 for a few classes (the matrix at least 160 pixels, room for the
    colour bar's label), down to 14 (readable labels), smaller only when the matrix would
    pass 1600 pixels."""
    cell = max(int(np.clip(640 // max(n, 1), 14, 64)), -(-160 // max(n, 1)))
    return cell if n * cell <= 1600 else max(2, 1600 // n)


def _count_px(matrix: np.ndarray, cell: int) -> int:
    """Font size of the counts in the cells, or 0 when they do not fit (or n > 30)."""
    if len(matrix) > 30:
        return 0
    widest = str(int(matrix.max(initial=0)))
    px = min(16, cell // 2)
    while px >= 8 and raster.text_width(widest, px) > cell - 4:
        px -= 1
    return px if px >= 8 else 0


def render_confusion(
    matrix: np.ndarray, class_names: Sequence[str], title: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draws a confusion matrix directly into an RGB array (no matplotlib figure).

    Cells are coloured by the row-normalised fraction (so rare classes read as clearly as
    common ones, matplotlib's "Blues" colormap from 0 to 1) and show the counts; true
    classes run down, predicted classes across, with a colour bar on the right. Long class
    names are cut short with an ellipsis; when the names are too many to fit (hundreds of
    classes) only every k-th is written; counts are left out above 30 classes.

    Example:

    ```python
    img, _ = render_confusion(confusion_matrix(model, x_val, y_val), ["cat", "dog"])
    image.save_png("confusion.png", img)
    ```

    Args:
        matrix: int `(n, n)` counts, rows = true classes.
        class_names: n names for the axes.
        title: text above the plot. Defaults to None.

    Returns:
        `(image, centers)`: a float32 RGB image in [0, 1] and the float `(n, n, 2)` pixel
        `(row, col)` of each cell's centre in it.
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    support = matrix.sum(axis=1, keepdims=True)
    frac = np.where(support > 0, matrix / np.maximum(support, 1), 0.0)
    cell = _cell_size(n)
    label_px = int(np.clip(cell * 0.7, 9, _AXIS_PX))
    step = max(1, math.ceil((raster.line_height(label_px) + 1) / cell))  # every k-th label
    names = [raster.fit_text(str(s), label_px, _MAX_NAME_PX) for s in class_names]
    shown = list(range(0, n, step))
    widths = [raster.text_width(names[i], label_px) for i in shown] or [0]
    if all(w <= cell - 4 for w in widths):
        angle = 0
    else:
        angle = 45 if cell * 0.7 >= raster.line_height(label_px) + 1 else 90
    boxes = [raster.rotated_size(names[i], label_px, angle) for i in shown] or [(0, 0)]
    axis_h = raster.line_height(_AXIS_PX)

    # Layout, left to right: y label, row names, matrix, colour bar, its ticks and label.
    left = _MARGIN + axis_h + 6 + max(widths) + 8
    if angle == 45:  # slanted names reach left of their column
        reach = max(w - int((i + 0.5) * cell) - 4 for (w, _), i in zip(boxes, shown))
        left = max(left, _MARGIN + reach)
    top = _MARGIN + (raster.line_height(_TITLE_PX) + 10 if title else 4)
    side = n * cell
    bar_x = left + side + 20
    tick_w = raster.text_width("0.0", _AXIS_PX - 1) + 4
    width = bar_x + 22 + tick_w + 2 + raster.line_height(_AXIS_PX - 1) + _MARGIN
    names_h = max(h for _, h in boxes)
    height = top + side + 6 + names_h + 6 + axis_h + _MARGIN
    canvas = raster.Canvas(width, height)

    edges = np.arange(n + 1) * cell
    canvas.fill_cells(left, top, edges, edges, raster.colormap_colors(frac, "Blues"))
    canvas.outline(left, top, side, side)
    count_px = _count_px(matrix, cell)
    if count_px:
        for t in range(n):
            for p in range(n):
                canvas.text(
                    str(int(matrix[t, p])),
                    left + (p + 0.5) * cell,
                    top + (t + 0.5) * cell,
                    count_px,
                    (1.0, 1.0, 1.0) if frac[t, p] > 0.5 else (0.0, 0.0, 0.0),
                    ha="center",
                    va="center",
                )
    for i in shown:
        centre = (i + 0.5) * cell
        canvas.fill_rect(left - 4, int(top + centre), left, int(top + centre) + 1, (0, 0, 0))
        canvas.text(names[i], left - 6, top + centre, label_px, ha="right", va="center")
        x = left + centre
        canvas.fill_rect(int(x), top + side, int(x) + 1, top + side + 4, (0, 0, 0))
        if angle == 0:
            canvas.text(names[i], x, top + side + 6, label_px, ha="center", va="top")
        elif angle == 45:
            canvas.text(
                names[i], x + 4, top + side + 6, label_px, ha="right", va="top", rotation=45
            )
        else:
            canvas.text(names[i], x, top + side + 6, label_px, ha="center", va="top", rotation=90)
    if title:
        canvas.text(title, left + side / 2, _MARGIN, _TITLE_PX, ha="center", va="top")
    canvas.text(
        "predicted class", left + side / 2, height - _MARGIN, _AXIS_PX, ha="center", va="bottom"
    )
    canvas.text(
        "true class", _MARGIN, top + side / 2, _AXIS_PX, ha="left", va="center", rotation=90
    )
    _colorbar(canvas, bar_x, top, side)

    rows = top + (np.arange(n) + 0.5) * cell
    centers = np.stack(np.broadcast_arrays(rows[:, None], (left + rows - top)[None, :]), axis=-1)
    return canvas.image(), centers.astype(np.float64)


def _colorbar(canvas: raster.Canvas, x: int, y: int, height: int) -> None:
    """The "Blues" scale from 0 (bottom) to 1 (top), ticked every 0.2, with its label."""
    values = 1.0 - (np.arange(height) + 0.5) / height
    canvas.fill_cells(
        x, y, [0, 16], np.arange(height + 1), raster.colormap_colors(values, "Blues")[:, None]
    )
    canvas.outline(x, y, 16, height)
    for v in _COLORBAR_TICKS:
        ty = y + (1.0 - v) * (height - 1)
        canvas.fill_rect(x + 16, int(round(ty)), x + 20, int(round(ty)) + 1, (0, 0, 0))
        canvas.text(f"{v:.1f}", x + 22, ty, _AXIS_PX - 1, ha="left", va="center")
    label_x = x + 22 + raster.text_width("0.0", _AXIS_PX - 1) + 6
    canvas.text(
        "fraction of true class", label_x, y + height / 2, _AXIS_PX - 1, va="center", rotation=90
    )
