"""Draws a confusion matrix: cells coloured by the fraction of each true class, with the counts
and class names, as a float RGB image (matplotlib's Agg canvas, no display, no pyplot state).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_cnnvis.rendering.image import figure_to_array


def render_confusion(
    matrix: np.ndarray, class_names: Sequence[str], title: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draws a confusion matrix with matplotlib's Agg canvas (no display, no pyplot state).

    Cells are coloured by the row-normalised fraction (so rare classes read as clearly as
    common ones) and show the counts; true classes run down, predicted classes across.

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
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    n = len(matrix)
    support = matrix.sum(axis=1, keepdims=True)
    frac = np.where(support > 0, matrix / np.maximum(support, 1), 0.0)
    longest = max((len(s) for s in class_names), default=1)
    side = min(14.0, 1.6 + 0.55 * n + 0.06 * longest)
    fig = Figure(figsize=(side + 0.8, side), dpi=100)
    ax = fig.add_subplot()
    shown = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    if n <= 30:
        size = max(6, min(12, 120 // max(n, 1)))
        for t in range(n):
            for p in range(n):
                ax.text(
                    p,
                    t,
                    str(int(matrix[t, p])),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if frac[t, p] > 0.5 else "black",
                )
    ax.set_xticks(
        range(n),
        class_names,
        rotation=45 if longest > 3 else 0,
        ha="right" if longest > 3 else "center",
    )
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    rgb = figure_to_array(fig)
    xy = ax.transData.transform(
        np.array([(p, t) for t in range(n) for p in range(n)], np.float64)
    ).reshape(n, n, 2)
    centers = np.stack([rgb.shape[0] - xy[..., 1], xy[..., 0]], axis=-1)
    return rgb, centers
