"""Draws a robustness table: accuracy per corruption (rows) and severity (columns), with the clean
accuracy as the first column, as a float RGB image (matplotlib's Agg canvas, no pyplot state).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_cnnvis.rendering.image import figure_to_array


def render_heatmap(
    accuracy: np.ndarray,
    corruptions: Sequence[str],
    severities: Sequence[int],
    clean: float | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draws accuracy per corruption and severity as a heatmap with the values in the cells.

    Cells are coloured from red (0) through yellow to green (1) on a fixed scale, so the
    images of different epochs compare at a glance; the clean accuracy, when given, is the
    first column (the same for every row).

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
    from matplotlib.figure import Figure

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
    longest = max((len(n) for n in corruptions), default=1)
    fig = Figure(figsize=(1.4 + 0.075 * longest + 0.62 * cols, 1.0 + 0.34 * rows), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(table, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    for r in range(rows):
        for c in range(cols):
            value = table[r, c]
            text = "–" if not np.isfinite(value) else f"{value:.2f}"
            dark = np.isfinite(value) and (value < 0.2 or value > 0.85)
            colour = "white" if dark else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour)
    if clean is not None:
        ax.axvline(0.5, color="white", linewidth=2)
    ax.set_xticks(range(cols), columns, fontsize=8)
    ax.set_yticks(range(rows), [n.replace("_", " ") for n in corruptions], fontsize=8)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


__all__ = ["render_heatmap"]
