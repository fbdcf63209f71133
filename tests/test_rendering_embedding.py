"""Embedding pictures: the t-SNE image grid tile by tile, the class colours of the scatter
plot, each point in its class colour where the layout puts it, PCA's ticks and principal-axis
arrows, the legend, NaN handling; and the nice ticks of rendering.raster."""

import dataclasses

import numpy as np
import pytest

from feature_helpers import blobs
from keras_cnnvis.features.projection import project
from keras_cnnvis.rendering import raster, scatter
from keras_cnnvis.rendering.embedding import class_colors, grid_image, scatter_figure, scatter_image


def test_grid_image_places_each_thumbnail_in_its_cell():
    rng = np.random.default_rng(0)
    imgs = rng.random((7, 5, 5, 3)).astype(np.float32)
    points = rng.normal(size=(7, 2))
    grid, cells = grid_image(imgs, points, tile=5)
    assert grid.shape == (3 * 6 + 1, 3 * 6 + 1, 3)
    for i, cell in enumerate(cells):
        r, c = divmod(int(cell), 3)
        np.testing.assert_allclose(
            grid[1 + r * 6 : 6 + r * 6, 1 + c * 6 : 6 + c * 6], imgs[i], atol=1e-6
        )
    empty = sorted(set(range(9)) - set(cells.tolist()))
    r, c = divmod(empty[0], 3)
    assert np.all(grid[1 + r * 6 : 6 + r * 6, 1 + c * 6 : 6 + c * 6] == 1.0)


def test_scatter_image_draws_every_class_colour():
    x, labels = blobs(15, np.eye(3) * 8, 0.5, 0)
    img = scatter_image(project(x, "pca"), labels, labels, ["a", "b", "c"], "t")
    assert img.shape == (560, 620, 3) and img.dtype == np.float32
    colors = class_colors(3)
    for color in colors:
        assert np.any(np.abs(img - color).max(-1) < 0.03), color
    only_two = scatter_image(project(x[:30], "pca"), labels[:30], None, ["a", "b", "c"])
    assert not np.any(np.abs(only_two - colors[2]).max(-1) < 0.03)


def test_pca_plot_draws_both_principal_axes_even_beyond_the_points():
    # Two rows of points at y = -1 and y = +1: PC2's 2-sigma arrow ends outside the points.
    x = np.c_[np.tile(np.linspace(-20, 20, 20), 2), np.repeat([-1.0, 1.0], 20)]
    proj = project(x, "pca")
    assert proj.explained_variance[1] == pytest.approx(40 / 39)
    fig = scatter_figure(proj, np.zeros(40, int))
    ax = fig.axes[0]
    tips = sorted(tuple(map(float, a.xy)) for a in ax.texts if a.arrow_patch is not None)
    sd = np.sqrt(proj.explained_variance.astype(np.float64))
    np.testing.assert_allclose(tips, [(0.0, 2 * sd[1]), (2 * sd[0], 0.0)], atol=1e-4)
    for tip in tips:  # inside the axes, so drawn
        assert ax.get_xlim()[0] <= tip[0] <= ax.get_xlim()[1]
        assert ax.get_ylim()[0] <= tip[1] <= ax.get_ylim()[1]
    labels = sorted(t.get_text() for t in ax.texts if t.arrow_patch is None)
    ratio = proj.explained_variance_ratio
    assert labels == [f"PC1: {100 * ratio[0]:.1f}%", f"PC2: {100 * ratio[1]:.1f}%"]
    assert (
        not scatter_figure(dataclasses.replace(proj, method="tsne"), np.zeros(40, int))
        .axes[0]
        .texts
    )


def pixel(img, xy):
    x, y = (int(round(v)) for v in xy)
    return img[y, x]


def test_draw_scatter_puts_each_point_in_its_class_colour_at_its_coordinates():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]])
    labels = np.array([0, 1, 2, 1, 0])
    wrong = np.array([False, False, False, True, False])
    colors = class_colors(3)
    img, frame = scatter.draw_scatter(pts, labels, colors, ["a", "b", "c"], wrong, "t", "s")
    assert img.shape == (560, 620, 3) and img.dtype == np.float32
    xy = frame.to_pixels(pts)
    for k, point in zip(labels, xy):
        np.testing.assert_allclose(pixel(img, point), colors[k], atol=1 / 255 + 1e-6)
    # Equal aspect, 5% margins: the 10-unit square is as tall as it is wide, inside the frame.
    assert xy[1, 0] - xy[0, 0] == pytest.approx(xy[0, 1] - xy[2, 1])
    assert frame.left < xy[0, 0] < xy[1, 0] < frame.right
    assert frame.to_pixels([(frame.x_lo, frame.y_lo)])[0] == pytest.approx(
        [frame.left, frame.bottom]
    )
    # The misclassified point gets a dark ring 4 pixels out; the others do not.
    ring = pixel(img, xy[3] + [0, -_RING])
    assert ring.max() < 0.45
    assert pixel(img, xy[2] + [0, -_RING]).min() > 0.9


_RING = 3.8


def test_scatter_image_keeps_the_layout_geometry():
    # Three blobs at (-10, 0), (10, 0), (0, 10): class colour centroids in the same places.
    centres = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.arange(3), 20)
    rng = np.random.default_rng(0)
    proj = project(rng.normal(size=(60, 2)), "pca")
    proj = dataclasses.replace(
        proj, points=centres[labels] + rng.normal(size=(60, 2)) * 0.3, method="tsne"
    )
    img = scatter_image(proj, labels, labels, ["a", "b", "c"], "t", size=(500, 420))
    assert img.shape == (420, 500, 3)
    frame_right = np.flatnonzero(img[210].max(-1) < 0.1).max()  # the frame's right side
    plot = img[:, :frame_right]  # left of the legend
    found = []
    for color in class_colors(3):
        ys, xs = np.nonzero(np.abs(plot - color).max(-1) < 0.01)
        assert len(ys) > 50
        found.append((xs.mean(), ys.mean()))
    (x0, y0), (x1, y1), (x2, y2) = found
    assert y0 == pytest.approx(y1, abs=2) and x0 < x1 and y2 < y0
    assert x2 == pytest.approx((x0 + x1) / 2, abs=2)
    assert (y0 - y2) / (x1 - x0) == pytest.approx(0.5, abs=0.03)  # equal aspect


def test_pca_ticks_sit_at_round_values_and_arrows_are_drawn():
    pts = np.array([[-12.0, -3.0], [17.0, 4.0], [2.0, 9.0]])
    arrows = [
        scatter.Arrow((0.0, 0.0), (8.0, 0.0), "#111111", "PC1: 60.0%"),
        scatter.Arrow((0.0, 0.0), (0.0, 6.0), "#555555", "PC2: 30.0%"),
    ]
    img, frame = scatter.draw_scatter(
        pts, [0, 1, 2], class_colors(3), list("abc"), axis_labels=("PC1", "PC2"), arrows=arrows
    )
    x_hi = frame.x_lo + (frame.right - frame.left) / frame.scale
    ticks = raster.nice_ticks(frame.x_lo, x_hi)
    np.testing.assert_allclose(ticks, [-10, -5, 0, 5, 10, 15])
    bottom = int(round(frame.bottom))
    for value in ticks:  # a black tick mark under the axis at each value
        x = int(round(frame.to_pixels([(value, 0.0)])[0, 0]))
        assert img[bottom + 1 : bottom + 4, x].max() < 0.05, value
    assert img[bottom + 1 : bottom + 4, int(round(frame.left)) + 7].min() > 0.95  # between
    centre, tip1, tip2 = frame.to_pixels([(0, 0), (8, 0), (0, 6)])
    np.testing.assert_allclose(pixel(img, (centre + tip1) / 2), [17 / 255] * 3, atol=0.02)
    np.testing.assert_allclose(pixel(img, (centre + tip2) / 2), [85 / 255] * 3, atol=0.02)
    assert pixel(img, tip1 - [2, 0]).max() < 0.2  # the head reaches the tip


def test_legend_lists_present_classes_and_sums_up_the_rest():
    labels = np.arange(60) % 40
    pts = np.random.default_rng(1).normal(size=(60, 2))
    colors = class_colors(40)
    img, frame = scatter.draw_scatter(pts, labels, colors, [f"n{i}" for i in range(40)])
    legend = img[:, int(frame.right) + 14 : int(frame.right) + 26]

    def shown(color):
        return np.any(np.abs(legend - color).max(-1) < 1 / 255 + 1e-6)

    listed = [k for k in range(40) if shown(colors[k])]
    assert listed == list(range(len(listed))) and 10 < len(listed) < 40
    assert img[-6:].min() > 0.99  # nothing runs off the bottom
    few, frame = scatter.draw_scatter(pts[:3], labels[:3], colors[:5], list("abcde"))
    legend = few[:, int(frame.right) + 14 : int(frame.right) + 26]
    assert [k for k in range(5) if shown(colors[k])] == [0, 1, 2]  # absent classes unlisted


def test_nan_points_are_left_out_and_nan_scores_unwritten():
    x, labels = blobs(15, np.eye(3) * 8, 0.5, 0)
    proj = project(x, "pca")
    points = proj.points.copy()
    points[:4] = np.nan
    img = scatter_image(dataclasses.replace(proj, points=points), labels, labels)
    assert np.isfinite(img).all()
    for color in class_colors(3):
        assert np.any(np.abs(img - color).max(-1) < 0.01)
    fig = scatter_figure(proj, labels, scores={"trustworthiness": 0.9, "knn_accuracy": np.nan})
    subtitle = [t.get_text() for t in fig.texts][1]
    assert "trustworthiness 0.900" in subtitle and "knn" not in subtitle


def test_nice_ticks_and_their_labels():
    np.testing.assert_allclose(raster.nice_ticks(-23.4, 18.2), [-20, -10, 0, 10])
    np.testing.assert_allclose(raster.nice_ticks(0, 1), np.arange(6) * 0.2, atol=1e-12)
    np.testing.assert_allclose(raster.nice_ticks(0.3, 0.31), np.linspace(0.3, 0.31, 6))
    assert raster.tick_labels([-20, -10, 0, 10]) == ["\u221220", "\u221210", "0", "10"]
    assert raster.tick_labels([0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert raster.tick_labels(raster.nice_ticks(-1e-3, 2e-3)) == [
        "\u22120.0010", "\u22120.0005", "0.0000", "0.0005", "0.0010", "0.0015", "0.0020"
    ]  # fmt: skip
