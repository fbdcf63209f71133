"""A class-coloured scatter plot drawn directly into an array (numpy + OpenCV, no matplotlib
figure): title and subtitle, equal-aspect axes with optional ticks, arrows and a legend.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from keras_cnnvis.rendering import raster

_TITLE_PX, _SUBTITLE_PX, _LEGEND_PX, _TICK_PX, _LABEL_PX, _ARROW_PX = 16, 12, 11, 11, 13, 12
_DOT_RADIUS, _RING_RADIUS = 2.6, 3.8  # matplotlib's s=14 and s=30 markers at 100 dpi
_RING_COLOR, _SUBTITLE_COLOR = "#222222", "#444444"


@dataclasses.dataclass(frozen=True)
class Arrow:
    """An arrow in data coordinates with a bold label at its tip."""

    start: tuple[float, float]
    tip: tuple[float, float]
    color: str
    label: str


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where data lands in the picture: pixel `x = left + (x - x_lo) * scale`, pixel
    `y = bottom - (y - y_lo) * scale` (equal aspect), inside the box `(left, top, right,
    bottom)`."""

    left: float
    top: float
    right: float
    bottom: float
    x_lo: float
    y_lo: float
    scale: float

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """`(n, 2)` data points as float pixel `(x, y)` (x right, y down)."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        x = self.left + (pts[:, 0] - self.x_lo) * self.scale
        y = self.bottom - (pts[:, 1] - self.y_lo) * self.scale
        return np.stack([x, y], axis=1)


def _frame(box: tuple[float, float, float, float], lo: np.ndarray, hi: np.ndarray) -> Frame:
    """The largest equal-aspect view of `[lo, hi]` (plus 5% margins) centred in `box`."""
    span = np.maximum(hi - lo, 1e-12)
    lo, span = lo - 0.05 * span, span * 1.1
    left, top, right, bottom = box
    scale = float(min((right - left) / span[0], (bottom - top) / span[1]))
    w, h = span * scale
    left += ((right - left) - w) / 2
    top += ((bottom - top) - h) / 2
    return Frame(left, top, left + w, top + h, float(lo[0]), float(lo[1]), scale)


def draw_scatter(
    points: np.ndarray,
    labels: np.ndarray,
    colors: np.ndarray,
    names: Sequence[str],
    wrong: np.ndarray | None = None,
    title: str = "",
    subtitle: str = "",
    axis_labels: tuple[str, str] | None = None,
    arrows: Sequence[Arrow] = (),
    size: tuple[int, int] = (620, 560),
) -> tuple[np.ndarray, Frame]:
    """Draws points coloured by class, misclassified ones ringed, with a legend on the right.

    Classes are drawn in order (class 0 first), then the rings; the legend lists each class
    present as "name (count)" and "misclassified (count)". With `axis_labels` the axes get
    round ticks and the two labels; without, a bare frame (a t-SNE layout has no units).

    Example:

    ```python
    img, frame = draw_scatter(pts, labels, class_colors(3), ["a", "b", "c"], title="PCA")
    ```

    Args:
        points: `(n, 2)` data coordinates.
        labels: `(n,)` class of each point (indexes `colors` and `names`).
        colors: `(classes, 3)` RGB in [0, 1].
        names: a name per class.
        wrong: `(n,)` bool, the points to ring. Defaults to None (none).
        title: the line at the top. Defaults to "".
        subtitle: the grey line under it. Defaults to "".
        axis_labels: `(x label, y label)` to draw ticks and labels. Defaults to None.
        arrows: arrows to draw over the points (their tips widen the view). Defaults to ().
        size: `(width, height)` in pixels. Defaults to `(620, 560)`.

    Returns:
        `(image, frame)`: the float32 `(height, width, 3)` picture in [0, 1] and the
        `Frame` mapping data to pixels.
    """
    width, height = int(size[0]), int(size[1])
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    labels = np.asarray(labels, np.int64).reshape(-1)
    canvas = raster.Canvas(width, height)
    counts = np.bincount(labels[labels >= 0], minlength=len(names)) if len(labels) else []
    entries = [(colors[c], f"{names[c]} ({int(k)})", False) for c, k in enumerate(counts) if k]
    if wrong is not None and np.any(wrong):
        entries.append((None, f"misclassified ({int(np.sum(wrong))})", True))
    legend_w = _legend_width(entries, width)

    x_text = round(0.03 * width)
    if title:
        canvas.text(raster.fit_text(title, _TITLE_PX, width - 2 * x_text), x_text, 25, _TITLE_PX)
    if subtitle:
        line = raster.fit_text(subtitle, _SUBTITLE_PX, width - 2 * x_text)
        canvas.text(line, x_text, 47, _SUBTITLE_PX, _SUBTITLE_COLOR)
    top = 69 if subtitle else 45
    ticks = axis_labels is not None
    margin_left = 20 + raster.line_height(_LABEL_PX) + _tick_label_width(pts) if ticks else 14
    margin_bottom = (
        12 + raster.line_height(_TICK_PX) + raster.line_height(_LABEL_PX) if ticks else 14
    )
    box = (margin_left, top, width - legend_w - 16, height - margin_bottom)

    extent = np.concatenate([pts] + [np.array([a.start, a.tip]) for a in arrows])
    finite = extent[np.all(np.isfinite(extent), axis=1)]
    lo, hi = (finite.min(0), finite.max(0)) if len(finite) else (np.zeros(2), np.ones(2))
    frame = _frame(box, lo, hi)
    canvas.outline(
        round(frame.left), round(frame.top), round(frame.right - frame.left),
        round(frame.bottom - frame.top), (0.0, 0.0, 0.0),
    )  # fmt: skip
    if ticks:
        _draw_ticks(canvas, frame, axis_labels)

    xy = frame.to_pixels(pts)
    drawn = np.all(np.isfinite(xy), axis=1)  # a NaN point has no place
    for c in range(len(names)):
        canvas.circles(xy[drawn & (labels == c)], _DOT_RADIUS, colors[c])
    if wrong is not None:
        ringed = drawn & np.asarray(wrong, bool)
        canvas.circles(xy[ringed], _RING_RADIUS, _RING_COLOR, thickness=1)
    for arrow in arrows:
        _draw_arrow(canvas, frame, arrow, limit=width - legend_w - 8)
    _draw_legend(canvas, entries, frame.right + 14, frame.top, height)
    return canvas.image(), frame


def _tick_label_width(pts: np.ndarray) -> int:
    """The widest y tick label the data can get (from the range of its second column)."""
    finite = pts[np.all(np.isfinite(pts), axis=1)]
    if not len(finite):
        return raster.text_width("0.0", _TICK_PX)
    lo, hi = finite[:, 1].min(), finite[:, 1].max()
    span = max(hi - lo, 1e-12)
    labels = raster.tick_labels(raster.nice_ticks(lo - 0.2 * span, hi + 0.2 * span))
    return max(raster.text_width(s, _TICK_PX) for s in labels)


def _draw_ticks(canvas: raster.Canvas, frame: Frame, labels: tuple[str, str]) -> None:
    """Round ticks on the bottom and left edges, their values, and the two axis labels."""
    black = (0.0, 0.0, 0.0)
    x_hi = frame.x_lo + (frame.right - frame.left) / frame.scale
    y_hi = frame.y_lo + (frame.bottom - frame.top) / frame.scale
    x_ticks = raster.nice_ticks(frame.x_lo, x_hi)
    y_ticks = raster.nice_ticks(frame.y_lo, y_hi)
    bottom, left = round(frame.bottom), round(frame.left)
    for value, text in zip(x_ticks, raster.tick_labels(x_ticks)):
        x = round(frame.to_pixels([(value, frame.y_lo)])[0, 0])
        canvas.fill_rect(x, bottom, x + 1, bottom + 4, black)
        canvas.text(text, x, bottom + 6, _TICK_PX, ha="center", va="top")
    widest = 0
    for value, text in zip(y_ticks, raster.tick_labels(y_ticks)):
        y = round(frame.to_pixels([(frame.x_lo, value)])[0, 1])
        canvas.fill_rect(left - 4, y, left, y + 1, black)
        box = canvas.text(text, left - 6, y, _TICK_PX, ha="right", va="center")
        widest = max(widest, left - box[0])
    label_y = bottom + 8 + raster.line_height(_TICK_PX)
    canvas.text(
        labels[0], (frame.left + frame.right) / 2, label_y, _LABEL_PX, ha="center", va="top"
    )
    centre = (frame.top + frame.bottom) / 2
    canvas.text(
        labels[1], left - widest - 4, centre, _LABEL_PX, ha="right", va="center", rotation=90
    )


def _draw_arrow(canvas: raster.Canvas, frame: Frame, arrow: Arrow, limit: int) -> None:
    """A 2-pixel shaft, a filled head and the bold label just past the tip (kept left of
    `limit`, the legend)."""
    (x0, y0), (x1, y1) = frame.to_pixels(np.array([arrow.start, arrow.tip]))
    length = float(np.hypot(x1 - x0, y1 - y0))
    if not np.isfinite(length) or length < 1:
        return
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    head = min(10.0, 0.5 * length)
    bx, by = x1 - ux * head, y1 - uy * head
    canvas.line((x0, y0), (bx, by), arrow.color, width=2)
    canvas.polygon(
        [(x1, y1), (bx - uy * 4.5, by + ux * 4.5), (bx + uy * 4.5, by - ux * 4.5)], arrow.color
    )
    text_w = raster.text_width(arrow.label, _ARROW_PX, bold=True)
    x = min(x1 + 6, limit - text_w)
    canvas.text(arrow.label, x, y1 - 6, _ARROW_PX, arrow.color, bold=True, halo=True)


def _legend_width(entries: list, width: int) -> int:
    """Room the legend takes at the right: its widest entry, at most a third of the picture
    (longer entries are cut short with an ellipsis)."""
    widest = max([raster.text_width(text, _LEGEND_PX) for _, text, _ in entries], default=0)
    return int(min(widest + 22, width / 3))


def _draw_legend(canvas: raster.Canvas, entries: list, x: float, top: float, height: int) -> None:
    """One row per entry (a dot or ring and its text); rows that do not fit are summed up in
    a last "+ k more" row, after which the misclassified row (if any) still comes."""
    row = raster.line_height(_LEGEND_PX) + 5
    room = max(1, int((height - 8 - top) // row))
    if len(entries) > room:
        keep = room - 1 - int(entries[-1][2])
        more = len(entries) - keep - int(entries[-1][2])
        entries = (
            entries[:keep]
            + [(None, f"+ {more} more classes", False)]
            + entries[-1:] * int(entries[-1][2])
        )
    text_room = canvas.width - int(x) - 20
    for i, (color, text, ring) in enumerate(entries):
        y = top + (i + 0.5) * row
        if ring:
            canvas.circles([(x + 5, y)], _RING_RADIUS, _RING_COLOR, thickness=1)
        elif color is not None:
            canvas.circles([(x + 5, y)], _DOT_RADIUS + 0.6, color)
        line = raster.fit_text(text, _LEGEND_PX, text_room)
        canvas.text(line, x + 16, y, _LEGEND_PX, ha="left", va="center")
