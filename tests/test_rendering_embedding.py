"""Embedding pictures: the t-SNE image grid tile by tile, the class colours of the scatter
plot, and PCA's principal-axis arrows at their computed tips."""

import dataclasses

import numpy as np
import pytest

from feature_helpers import blobs
from keras_cnnvis.features.projection import project
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
