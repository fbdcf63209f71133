"""Rendering of embeddings: class-coloured scatter plots (PCA with its principal axes) drawn
straight into arrays (or as matplotlib figures), and t-SNE image grids. No model, no files.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_cnnvis.features.projection import Projection, grid_assignment
from keras_cnnvis.rendering import image, scatter

METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE"}
"""How each projection method is named in titles."""


def class_colors(n_classes: int) -> np.ndarray:
    """`(n_classes, 3)` RGB colours in [0, 1]: tab10 up to 10 classes, then tab20, then hsv."""
    import matplotlib

    if n_classes <= 10:
        return np.asarray(matplotlib.colormaps["tab10"].colors[:n_classes], np.float32)
    if n_classes <= 20:
        return np.asarray(matplotlib.colormaps["tab20"].colors[:n_classes], np.float32)
    cmap = matplotlib.colormaps["hsv"]
    return cmap(np.linspace(0, 1, n_classes, endpoint=False))[:, :3].astype(np.float32)


def scatter_figure(
    projection: Projection,
    labels: Sequence[int],
    predictions: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    scores: dict | None = None,
    size: tuple[int, int] = (620, 560),
) -> Any:
    """Draws a 2-D layout coloured by class, with a legend, as a matplotlib Figure.

    Misclassified points (label != prediction) get a dark ring. For PCA the principal
    axes are drawn as arrows from the mean, two standard deviations long, each labelled
    with its share of the variance, and the share explained by the plane is stated.

    Example:

    ```python
    fig = scatter_figure(project(feats, "pca"), y_val, preds, class_names)
    fig.savefig("/tmp/pca.png")
    ```

    Args:
        projection: the layout (`project`'s result).
        labels: the class of each projected point (`(n,)`, same order as the points).
        predictions: predicted classes, or None. Defaults to None.
        class_names: names for the legend. Defaults to None ("class i").
        title: the plot title. Defaults to None (the method's name).
        scores: `{name: value}` written under the title (e.g. trustworthiness).
            Defaults to None.
        size: `(width, height)` in pixels. Defaults to `(620, 560)`.

    Returns:
        A `matplotlib.figure.Figure` (not attached to pyplot; `scatter_image` draws the
        same picture without matplotlib).
    """
    from matplotlib.figure import Figure

    pts, labels, wrong, names, colors = _scatter_inputs(
        projection, labels, predictions, class_names
    )
    n_classes = len(names)
    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_axes((0.1, 0.08, 0.63, 0.8))
    for c in range(n_classes):
        sel = labels == c
        if not sel.any():
            continue
        ax.scatter(
            pts[sel, 0],
            pts[sel, 1],
            s=14,
            color=colors[c],
            alpha=0.85,
            linewidths=0,
            label=f"{names[c]} ({int(sel.sum())})",
        )
    if wrong is not None and wrong.any():
        ax.scatter(
            pts[wrong, 0],
            pts[wrong, 1],
            s=30,
            facecolors="none",
            edgecolors="#222222",
            linewidths=0.8,
            label=f"misclassified ({int(wrong.sum())})",
        )
    method = METHOD_TITLES.get(projection.method, projection.method)
    if _has_axes(projection):
        _draw_axes(ax, pts, projection)
        ax.set_xlabel(_axis_labels(projection)[0])
        ax.set_ylabel(_axis_labels(projection)[1])
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    subtitle = _subtitle(projection, scores)
    fig.text(0.03, 0.955, title or method, ha="left", fontsize=12)
    if subtitle:
        fig.text(0.03, 0.915, subtitle, ha="left", fontsize=8.5, color="#444444")
    ax.set_aspect("equal", adjustable="box")
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False, borderaxespad=0
    )
    return fig


def scatter_image(
    projection: Projection,
    labels: Sequence[int],
    predictions: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    scores: dict | None = None,
    size: tuple[int, int] = (620, 560),
) -> np.ndarray:
    """Draws a 2-D layout coloured by class, with a legend, straight into an RGB array.

    The picture of `scatter_figure` (same title, subtitle, legend, misclassified rings and,
    for PCA, ticks, axis labels and principal-axis arrows), drawn with numpy and OpenCV
    instead of a matplotlib figure: about 10x cheaper, for pictures logged during training.

    Example:

    ```python
    img = scatter_image(project(feats, "tsne"), y_val, preds, class_names)
    image.save_png("/tmp/tsne.png", img)
    ```

    Args:
        projection: the layout (`project`'s result).
        labels: the class of each projected point.
        predictions: predicted classes, or None. Defaults to None.
        class_names: names for the legend. Defaults to None ("class i").
        title: the plot title. Defaults to None (the method's name).
        scores: `{name: value}` written under the title. Defaults to None.
        size: `(width, height)` in pixels. Defaults to `(620, 560)`.

    Returns:
        A float32 `(height, width, 3)` image in [0, 1].
    """
    pts, labels, wrong, names, colors = _scatter_inputs(
        projection, labels, predictions, class_names
    )
    method = METHOD_TITLES.get(projection.method, projection.method)
    arrows = []
    if _has_axes(projection):
        centre, tips = _axis_tips(pts, projection)
        ratio = projection.explained_variance_ratio
        for j, (tip, color) in enumerate(zip(tips, ("#111111", "#555555"))):
            if tip is not None:
                label = f"PC{j + 1}: {100 * float(ratio[j]):.1f}%"
                arrows.append(scatter.Arrow(tuple(centre), tuple(tip), color, label))
    picture, _ = scatter.draw_scatter(
        pts,
        labels,
        colors,
        names,
        wrong,
        title or method,
        _subtitle(projection, scores),
        _axis_labels(projection) if _has_axes(projection) else None,
        arrows,
        size,
    )
    return picture


def _scatter_inputs(projection, labels, predictions, class_names):
    """`(points, labels, wrong, names, colors)` of a scatter plot, checked and completed."""
    pts = np.asarray(projection.points, np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(labels)} labels.")
    top_prediction = -1 if predictions is None else int(np.max(predictions, initial=-1))
    n_classes = max(int(labels.max(initial=-1)), top_prediction) + 1
    if class_names is not None:
        n_classes = max(n_classes, len(class_names))
    names = [str(c) for c in class_names] if class_names is not None else []
    names += [f"class {i}" for i in range(len(names), n_classes)]
    wrong = None if predictions is None else np.asarray(predictions).reshape(-1) != labels
    return pts, labels, wrong, names, class_colors(max(n_classes, 1))


def _has_axes(projection: Projection) -> bool:
    """PCA layouts have meaningful axes (ticks, labels, principal-axis arrows)."""
    return projection.method == "pca" and projection.explained_variance is not None


def _axis_labels(projection: Projection) -> tuple[str, str]:
    ratio = projection.explained_variance_ratio
    return f"PC1 ({100 * float(ratio[0]):.1f}%)", f"PC2 ({100 * float(ratio[1]):.1f}%)"


def _subtitle(projection: Projection, scores: dict | None) -> str:
    """The explained variance (PCA) and the finite scores, joined by " · "."""
    parts = []
    if _has_axes(projection):
        ratio = projection.explained_variance_ratio
        parts.append(f"PC1 + PC2 explain {100 * float(ratio.sum()):.1f}% of the variance")
    for key, value in (scores or {}).items():
        if value is not None and np.isfinite(value):
            parts.append(f"{key.replace('_', ' ')} {float(value):.3f}")
    return " · ".join(parts)


def _axis_tips(pts: np.ndarray, projection: Projection) -> tuple[np.ndarray, list]:
    """The mean of the points and the tips of the principal axes, 2 standard deviations
    from it (None for an axis without variance). Non-finite points are left out."""
    finite = pts[np.all(np.isfinite(pts), axis=1)]
    centre = finite.mean(0) if len(finite) else np.zeros(2)
    tips = []
    for j in range(2):
        length = 2.0 * float(np.sqrt(max(projection.explained_variance[j], 0.0)))
        tips.append(centre + np.eye(2)[j] * length if length > 0 else None)
    return centre, tips


def _draw_axes(ax, pts: np.ndarray, projection: Projection) -> None:
    """Principal axes: arrows from the mean, 2 standard deviations long."""
    centre, tips = _axis_tips(pts, projection)
    ratio = projection.explained_variance_ratio
    for j, tip, color in zip(range(2), tips, ("#111111", "#555555")):
        if tip is None:
            continue
        # Annotations do not widen the axes and are hidden when their tip is outside them.
        ax.update_datalim(np.stack([centre, tip]))
        ax.annotate(
            "",
            xy=tip,
            xytext=centre,
            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2.0, "mutation_scale": 16},
            annotation_clip=False,
        )
        ax.annotate(
            f"PC{j + 1}: {100 * float(ratio[j]):.1f}%",
            xy=tip,
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=9,
            color=color,
            fontweight="bold",
            annotation_clip=False,
        )
    ax.autoscale_view()


def display_images(images: np.ndarray) -> np.ndarray:
    """Images as float `(N, H, W, C)` in [0, 1] for display (see `image.display_images`)."""
    x = np.asarray(images, np.float32)
    return image.display_images(x[..., None] if x.ndim == 3 else x)


def thumbnails(images: np.ndarray, max_size: int = 32) -> np.ndarray:
    """Shrinks display images so their longer side is at most `max_size` pixels."""
    x = display_images(images)
    h, w = x.shape[1:3]
    scale = min(1.0, max_size / max(h, w))
    if scale >= 1.0:
        return x
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    out = image.resize(x, size)
    if out.ndim == 3:
        out = out[..., None]
    return np.clip(out.reshape(len(x), size[0], size[1], x.shape[-1]), 0, 1).astype(np.float32)


def grid_image(
    images: np.ndarray,
    points: np.ndarray,
    cols: int | None = None,
    tile: int = 24,
    labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The "t-SNE grid": images placed on a regular grid by their 2-D layout.

    Each image goes to one cell; cells are chosen by linear assignment of the layout to
    the grid (`grid_assignment`), so similar images sit together without overlapping.
    With `labels`, each tile gets a 2-pixel class-coloured bottom bar.

    Example:

    ```python
    grid, cells = grid_image(x_val[proj.indices], proj.points)
    ```

    Args:
        images: `(n, H, W[, C])` images (any range; see `display_images`).
        points: `(n, 2)` their layout.
        cols: grid columns. Defaults to None (`ceil(sqrt(n))`).
        tile: tile size in pixels (the longer image side). Defaults to 24.
        labels: classes for the colour bars. Defaults to None (no bars).

    Returns:
        `(grid, cells)`: a float32 `(rows*(h+1)+1, cols*(w+1)+1, 3)` image (white
        padding, empty cells white) and the cell of each image (row-major).
    """
    thumbs = thumbnails(images, tile)
    if thumbs.shape[-1] == 1:
        thumbs = np.repeat(thumbs, 3, axis=-1)
    thumbs = thumbs[..., :3]
    n = len(thumbs)
    cols = int(cols) if cols else max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / cols)))
    cells = grid_assignment(points, rows, cols)
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64)
        colors = class_colors(int(labels.max()) + 1)
        thumbs = thumbs.copy()
        thumbs[:, -2:, :, :] = colors[labels][:, None, None, :]
    placed = np.ones((rows * cols,) + thumbs.shape[1:], np.float32)
    placed[cells] = thumbs
    return image.tile_grid(placed, cols=cols, pad=1, pad_value=1.0), cells
