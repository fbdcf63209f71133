"""Draws a robustness table: accuracy per corruption (rows) and severity (columns), with the clean
accuracy as the first column, as a float RGB image (drawn directly, no matplotlib figure).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_cnnvis.rendering import raster

_PX, _TITLE_PX, _MARGIN = 12, 13, 10
_CELL_W, _CELL_H = 64, 30
_MAX_NAME_PX = 180  # longer corruption names are cut short with an ellipsis


def render_heatmap(
    accuracy: np.ndarray,
    corruptions: Sequence[str],
    severities: Sequence[int],
    clean: float | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draws accuracy per corruption and severity as a heatmap with the values in the cells.

    Cells are coloured from red (0) through yellow to green (1) on a fixed scale
    (matplotlib's "RdYlGn"), so the images of different epochs compare at a glance; the
    clean accuracy, when given, is the first column (the same for every row), set off by
    a white line. A missing (NaN) accuracy shows as a white cell with a dash.

    Example:

    ```python
    table = corruption_accuracy(model, x_val, y_val)
    img = render_heatmap(table.accuracy, table.corruptions, table.severities, table.clean)
    image.save_png("robustness.png", img)
    ```

    Args:
        accuracy: `(len(corruptions), len(severities))` accuracies in [0, 1].
        corruptions: the row names.
        severities: the column severities.
        clean: the clean accuracy. Defaults to None (no clean column).
        title: text above the plot. Defaults to None.

    Returns:
        A float32 RGB image in [0, 1].

    Raises:
        ValueError: if `accuracy` does not have one row per corruption and one column per
            severity.
    """
    table = np.asarray(accuracy, np.float64)
    if table.shape != (len(corruptions), len(severities)):
        raise ValueError(
            f"accuracy must be (corruptions, severities) = ({len(corruptions)}, "
            f"{len(severities)}); got shape {table.shape}."
        )
    columns = [f"sev {s}" for s in severities]
    if clean is not None:
        table = np.concatenate([np.full((len(table), 1), float(clean)), table], axis=1)
        columns = ["clean"] + columns
    rows, cols = table.shape
    names = [raster.fit_text(n.replace("_", " "), _PX, _MAX_NAME_PX) for n in corruptions]
    name_w = max([raster.text_width(n, _PX) for n in names], default=0)
    cell_w = max([_CELL_W] + [raster.text_width(c, _PX) + 10 for c in columns])
    line = raster.line_height(_PX)
    left = _MARGIN + name_w + 8
    top = _MARGIN + (raster.line_height(_TITLE_PX) + 8 if title else 0)
    title_w = raster.text_width(title, _TITLE_PX) if title else 0
    centre = max(left + cols * cell_w / 2, _MARGIN + title_w / 2)  # of the title
    width = int(np.ceil(max(left + cols * cell_w, centre + title_w / 2))) + _MARGIN
    canvas = raster.Canvas(width, top + rows * _CELL_H + 6 + line + _MARGIN)

    edges_x, edges_y = np.arange(cols + 1) * cell_w, np.arange(rows + 1) * _CELL_H
    canvas.fill_cells(left, top, edges_x, edges_y, raster.colormap_colors(table, "RdYlGn"))
    for r in range(rows):
        y = top + (r + 0.5) * _CELL_H
        canvas.text(names[r], left - 8, y, _PX, ha="right", va="center")
        for c in range(cols):
            value = table[r, c]
            finite = bool(np.isfinite(value))
            dark = finite and (value < 0.2 or value > 0.85)
            canvas.text(
                f"{value:.2f}" if finite else "\u2013",
                left + (c + 0.5) * cell_w,
                y,
                _PX,
                (1.0, 1.0, 1.0) if dark else (0.0, 0.0, 0.0),
                ha="center",
                va="center",
            )
    bottom = top + rows * _CELL_H
    for c, label in enumerate(columns):
        canvas.text(label, left + (c + 0.5) * cell_w, bottom + 6, _PX, ha="center", va="top")
    if clean is not None:  # the clean column set off from the corrupted ones
        canvas.fill_rect(left + cell_w - 1, top, left + cell_w + 1, bottom, (1.0, 1.0, 1.0))
    canvas.outline(left, top, cols * cell_w, rows * _CELL_H, (0.2, 0.2, 0.2))
    if title:
        canvas.text(title, centre, _MARGIN, _TITLE_PX, ha="center", va="top")
    return canvas.image()


__all__ = ["render_heatmap"]
