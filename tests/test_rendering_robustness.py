"""Robustness heatmap drawing (keras_cnnvis.rendering.robustness): each cell in matplotlib's
RdYlGn colour of its accuracy on a grid, values written in the cells, the clean column set off,
names beside the rows, NaN as a blank cell; and the colormap bins of rendering.raster."""

import matplotlib
import numpy as np
import pytest

from keras_cnnvis.rendering import raster
from keras_cnnvis.rendering.robustness import render_heatmap

LEVEL = 1 / 255 + 1e-6


def rdylgn(value):
    return np.asarray(matplotlib.colormaps["RdYlGn"](value)[:3], np.float32)


def box_of(img, color):
    """`(y0, y1, x0, x1)` bounding box of the pixels of exactly `color`, and their count."""
    ys, xs = np.nonzero(np.abs(img - color).max(-1) < LEVEL)
    return (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1), len(ys)


ACCURACY = np.array([[0.62, 0.41, 0.13], [0.77, 0.55, 0.33]])


def test_cells_sit_on_a_grid_in_the_colour_of_their_accuracy():
    img = render_heatmap(ACCURACY, ["gaussian_noise", "fog"], [1, 3, 5], clean=0.91, title="t")
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    boxes = {}
    for r in range(2):
        for c in range(3):
            box, count = box_of(img, rdylgn(ACCURACY[r, c]))
            h, w = box[1] - box[0], box[3] - box[2]
            assert count > 0.6 * h * w and h >= 20 and w >= 40, (r, c)  # a cell, minus text
            boxes[r, c] = box
    for r in range(2):  # rows share their top and bottom, columns their left and right
        assert len({boxes[r, c][:2] for c in range(3)}) == 1
    for c in range(3):
        assert len({boxes[r, c][2:] for r in range(2)}) == 1
    assert boxes[0, 0][1] == boxes[1, 0][0]  # row 1 directly under row 0
    assert boxes[0, 0][3] == boxes[0, 1][2]  # severity columns touch
    # The clean column: both rows in the clean colour, left of severity 1, set off by a
    # white line.
    (cy0, cy1, cx0, cx1), count = box_of(img, rdylgn(0.91))
    assert cy0 == boxes[0, 0][0] and cy1 == boxes[1, 0][1] and cx1 < boxes[0, 0][2]
    gap = img[cy0 + 2 : cy1 - 2, cx1 : boxes[0, 0][2]]
    assert gap.shape[1] >= 1 and np.all(gap > 1 - LEVEL)


def test_values_are_written_in_the_cells_white_on_the_extremes():
    table = np.array([[0.95, 0.5, 0.1]])
    img = render_heatmap(table, ["noise"], [1, 2, 3])
    for value, white in [(0.95, True), (0.5, False), (0.1, True)]:
        fill = rdylgn(value)
        (y0, y1, x0, x1), _ = box_of(img, fill)
        patch = img[y0:y1, x0:x1]
        assert (np.abs(patch - fill).max(-1) > 0.3).sum() > 20  # "0.95" is there
        if white:
            assert patch.min(-1).max() > 0.97
        else:
            assert patch.max(-1).min() < 0.03


def test_row_and_column_names_are_written_beside_and_below_the_cells():
    img = render_heatmap(ACCURACY, ["gaussian_noise", "fog"], [1, 3, 5], clean=0.91)
    ink = img.min(-1) < 0.3
    for r in range(2):
        y0, y1, x0, _ = box_of(img, rdylgn(ACCURACY[r, 0]))[0]
        assert ink[y0:y1, : x0 - 60].sum() > 10  # the row's name, left of the clean cell
    (_, y1, x0, x1), _ = box_of(img, rdylgn(ACCURACY[1, 2]))
    assert ink[y1 + 2 : y1 + 20, x0:x1].sum() > 10  # "sev 5" under its column
    wide = render_heatmap(ACCURACY, ["n" * 200, "fog"], [1, 3, 5])
    narrow = render_heatmap(ACCURACY, ["n", "fog"], [1, 3, 5])
    assert wide.shape[1] - narrow.shape[1] <= 190  # the long name is cut short


def test_a_missing_accuracy_is_a_white_cell_with_a_dash():
    table = ACCURACY.copy()
    table[1, 1] = np.nan
    img = render_heatmap(table, ["a", "b"], [1, 3, 5])
    y0, y1 = box_of(img, rdylgn(table[1, 0]))[0][:2]
    x0, x1 = box_of(img, rdylgn(table[0, 1]))[0][2:]
    cell = img[y0:y1, x0:x1]
    assert (cell > 1 - LEVEL).all(-1).mean() > 0.9  # white ...
    dash = np.nonzero(cell.min(-1) < 0.3)
    assert 0 < len(dash[0]) < 40 and np.ptp(dash[0]) <= 2  # ... with a short flat stroke


def test_the_table_shape_is_checked():
    with pytest.raises(ValueError, match="corruptions, severities"):
        render_heatmap(np.zeros((2, 2)), ["a", "b"], [1, 2, 3])


def test_colormap_colors_match_matplotlib_bins_and_paint_nan_white():
    values = np.r_[np.linspace(0, 1, 2001), 1 / 256, 255 / 256, -0.5, 1.5, np.nan]
    for name in ("Blues", "RdYlGn"):
        expected = matplotlib.colormaps[name](np.clip(values[:-1], 0, 1))[:, :3]
        got = raster.colormap_colors(values, name)
        np.testing.assert_array_equal(got[:-1], expected)
        np.testing.assert_array_equal(got[-1], [1.0, 1.0, 1.0])
