"""Feature extraction, PCA/t-SNE projection, alignment, scores and grid assignment, checked
against hand-built models, brute-force references and properties that can fail."""

import dataclasses
import itertools
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial import procrustes

from keras_cnnvis.embedding_plots import class_colors, grid_image, scatter_figure, scatter_image
from keras_cnnvis.embedding_scores import knn_accuracy, trustworthiness
from keras_cnnvis.embeddings import (
    LayerFeatures,
    align,
    cap_indices,
    extract_features,
    feature_layer,
    flatten_features,
    grid_assignment,
    project,
)

SHAPE = (6, 6, 2)


# -- models with known weights -------------------------------------------------------------


def _set(layer, kernel, bias):
    layer.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])


def _weights(rng):
    return {
        "conv": (rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)),
        "feat": (rng.normal(size=(4, 5)), rng.normal(size=5)),
        "out": (rng.normal(size=(5, 3)), rng.normal(size=3)),
    }


def _layers():
    return (
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(5, activation="relu", name="feat"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    )


def functional():
    conv, gap, feat, out = _layers()
    i = keras.Input(SHAPE)
    return keras.Model(i, out(feat(gap(conv(i)))))


def functional_dropout():
    conv, gap, feat, out = _layers()
    i = keras.Input(SHAPE)
    x = keras.layers.Dropout(0.5, name="drop")(feat(gap(conv(i))))
    return keras.Model(i, out(x))


def sequential():
    return keras.Sequential([keras.Input(SHAPE), *_layers()])


def nested():
    conv, gap, feat, out = _layers()
    base = keras.Sequential([keras.Input(SHAPE), conv, gap, feat], name="base")
    i = keras.Input(SHAPE)
    return keras.Model(i, out(base(i)))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv, self.gap, self.feat, self.out = _layers()

    def call(self, x):
        return self.out(self.feat(self.gap(self.conv(x))))


def subclassed():
    model = Subclassed()
    model(np.zeros((1, *SHAPE), np.float32))
    return model


KINDS = {
    "functional": (functional, "feat", "output"),
    "dropout": (functional_dropout, "drop", "output"),
    "sequential": (sequential, "feat", "output"),
    "nested": (nested, "base", "output"),  # the nested model outputs the features
    "subclassed": (subclassed, "out", "input"),
}


def _with_weights(make, seed=0):
    model = make()
    weights = _weights(np.random.default_rng(seed))
    for info_name, (k, b) in weights.items():
        layer = next(l for l in _all_layers(model) if l.name == info_name)
        _set(layer, k, b)
    return model, weights


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _manual_features(x, weights):
    """relu(conv) -> mean over space -> relu(dense): the input of the last Dense, by hand."""
    k, b = weights["conv"]
    n, h, w, _ = x.shape
    maps = np.zeros((n, h - 2, w - 2, k.shape[-1]))
    for i in range(h - 2):
        for j in range(w - 2):
            patch = x[:, i : i + 3, j : j + 3, :]
            maps[:, i, j, :] = np.einsum("nhwc,hwcf->nf", patch, k) + b
    pooled = np.maximum(maps, 0).mean(axis=(1, 2))
    fk, fb = weights["feat"]
    return np.maximum(pooled @ fk + fb, 0), np.maximum(maps, 0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((10, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_default_features_are_the_input_of_the_last_dense_layer(kind, images):
    make, path, io = KINDS[kind]
    model, weights = _with_weights(make)
    info, got_io = feature_layer(model)
    assert (info.path, got_io) == (path, io)
    expected, _ = _manual_features(images.astype(np.float64), weights)
    feats, outputs = extract_features(model, images, batch_size=3, return_outputs=True)
    assert feats.dtype == np.float32 and feats.shape == (10, 5)
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs, model(images).numpy(), rtol=1e-5, atol=1e-6)


def test_features_follow_the_live_weights(images):
    model, weights = _with_weights(functional)
    source = LayerFeatures(model)
    before, _ = source(images)
    _set(model.get_layer("feat"), weights["feat"][0] * 2, weights["feat"][1] * 2)
    after, _ = source(images)
    np.testing.assert_allclose(after, 2 * before, rtol=1e-5, atol=1e-6)


def test_spatial_layer_is_pooled_with_a_warning(images):
    model, weights = _with_weights(functional)
    _, maps = _manual_features(images.astype(np.float64), weights)
    with pytest.warns(
        UserWarning,
        match=r"Layer 'conv' outputs spatial maps of shape \(4, 4, 4\); keras-cnnvis global-average-pools them to 4 features",
    ):
        avg = extract_features(model, images, layer="conv")
    np.testing.assert_allclose(avg, maps.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="global-max-pools"):
        mx = extract_features(model, images, layer="conv", spatial="max")
    np.testing.assert_allclose(mx, maps.max(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="flattens them to 64 features"):
        flat = extract_features(model, images, layer="conv", spatial="flatten")
    np.testing.assert_allclose(flat, maps.reshape(10, -1), rtol=1e-4, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_features(model, images, layer="conv", warn=False)
        extract_features(model, images)  # flat: no warning


def test_dataset_input_equals_numpy(images):
    model, _ = _with_weights(functional)
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(10))).batch(4)
    np.testing.assert_allclose(
        extract_features(model, ds), extract_features(model, images), rtol=1e-6
    )


def test_feature_errors():
    no_dense = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Conv2D(2, 3), keras.layers.Flatten()]
    )
    with pytest.raises(ValueError, match="has no Dense layer.*layer='last_conv'"):
        feature_layer(no_dense)
    model, _ = _with_weights(functional)
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        extract_features(model, np.zeros((2, *SHAPE)), layer="nope")
    with pytest.raises(ValueError, match="spatial must be one of"):
        extract_features(model, np.zeros((2, *SHAPE)), spatial="mean")
    with pytest.raises(ValueError, match="The images batch is empty"):
        extract_features(model, np.zeros((0, *SHAPE)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        flatten_features(np.zeros(3))


# -- projection ----------------------------------------------------------------------------


def _blobs(n_per, centres, spread, seed):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, np.float64)
    labels = np.repeat(np.arange(len(centres)), n_per)
    return centres[labels] + rng.normal(size=(len(labels), centres.shape[1])) * spread, labels


def test_pca_matches_the_covariance_eigendecomposition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 7)) @ rng.normal(size=(7, 7)) + 3.0
    proj = project(x, "pca")
    cov = np.cov(x, rowvar=False)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    reference = (x - x.mean(0)) @ evecs[:, :2]
    np.testing.assert_allclose(np.abs(proj.points), np.abs(reference), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(proj.explained_variance, evals[:2], rtol=1e-4)
    np.testing.assert_allclose(proj.explained_variance_ratio, evals[:2] / evals.sum(), rtol=1e-4)
    np.testing.assert_array_equal(proj.indices, np.arange(60))


def test_pca_of_a_rotated_plane_keeps_every_distance():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(40, 2)) * [3.0, 1.0]
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    x = np.c_[plane, np.zeros((40, 4))] @ q.T + 5.0
    proj = project(x, "pca")
    d_in = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d_out = np.linalg.norm(proj.points[:, None] - proj.points[None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-4)
    np.testing.assert_allclose(proj.explained_variance_ratio.sum(), 1.0, atol=1e-6)


def test_pca_signs_follow_the_previous_layout():
    x, _ = _blobs(20, [[0, 0, 0], [5, 1, 0], [0, 4, 1]], 0.5, 0)
    first = project(x, "pca")
    flipped = project(x, "pca", init=first.points * [-1, 1])
    np.testing.assert_allclose(flipped.points, first.points * [-1, 1], atol=1e-5)
    assert flipped.aligned and not first.aligned


def test_tsne_cap_is_enforced_and_result_is_seeded():
    x, _ = _blobs(300, [[0] * 8, [6] * 8, [0, 6] * 4, [6, 0] * 4], 1.0, 2)
    proj = project(x, "tsne", max_points=100, seed=3, max_iter=250)
    assert proj.points.shape == (100, 2) and proj.points.dtype == np.float32
    assert len(np.unique(proj.indices)) == 100 and np.all(np.diff(proj.indices) > 0)
    np.testing.assert_array_equal(proj.indices, cap_indices(1200, 100, 3))
    # It ran on exactly those rows: the same as projecting them directly.
    direct = project(x[proj.indices], "tsne", max_points=100, seed=3, max_iter=250)
    np.testing.assert_array_equal(direct.points, proj.points)
    again = project(x, "tsne", max_points=100, seed=3, max_iter=250)
    np.testing.assert_array_equal(again.points, proj.points)
    other = project(x, "tsne", max_points=100, seed=4, max_iter=250)
    assert not np.array_equal(np.sort(other.indices), np.sort(proj.indices))
    assert cap_indices(50, 100).tolist() == list(range(50))


def test_tsne_keeps_separated_clusters_apart():
    x, labels = _blobs(30, np.eye(4) * 10, 1.0, 5)
    proj = project(x, "tsne", max_iter=500)
    assert trustworthiness(x, proj.points) > 0.95
    assert knn_accuracy(proj.points, labels, k=5) == 1.0


def _drifting_clusters(steps, n=150, k=6, dim=24, seed=0):
    """Features of equidistant classes drifting a little per epoch: where t-SNE from
    scratch may rearrange the clusters although the data hardly changed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    centres = rng.normal(size=(k, dim)) * 3
    offsets = rng.normal(size=(n, dim))
    out = []
    for t in range(steps):
        step_rng = np.random.default_rng(100 + t)
        c = centres + step_rng.normal(size=(k, dim)) * 0.6 * np.sqrt(t)
        out.append(c[labels] + offsets + step_rng.normal(size=(n, dim)) * 0.3)
    return out


def test_warm_start_moves_consecutive_layouts_less():
    feats = _drifting_clusters(4)
    cold = [project(f, "tsne", max_iter=500).points for f in feats]
    warm, prev = [], None
    for f in feats:
        proj = project(f, "tsne", init=prev, max_iter=500, warm_iter=250)
        assert proj.aligned == (prev is not None)
        warm.append(proj.points)
        prev = proj.points
    # Procrustes disparity: what is left after the best translation, rotation and scale.
    moved_cold = np.mean([procrustes(a, b)[2] for a, b in zip(cold, cold[1:])])
    moved_warm = np.mean([procrustes(a, b)[2] for a, b in zip(warm, warm[1:])])
    assert moved_warm < 0.5 * moved_cold, (moved_warm, moved_cold)
    # ... without losing faithfulness.
    assert min(trustworthiness(f, p) for f, p in zip(feats, warm)) > 0.9
    # And the aligned layout is on top of the previous one, not rotated away from it.
    raw_offset = np.linalg.norm(warm[-1] - warm[-2], axis=1).mean()
    spread = np.linalg.norm(warm[-2] - warm[-2].mean(0), axis=1).mean()
    assert raw_offset < 0.25 * spread


def test_project_errors():
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        project(x, "umap")
    with pytest.raises(ValueError, match="at least 4 points"):
        project(x[:3], "tsne")
    bad = x.copy()
    bad[[2, 5], 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 2 of 20 rows"):
        project(bad, "pca")
    with pytest.raises(ValueError, match=r"shape \(20, 2\); got shape \(19, 2\)"):
        project(x, "tsne", init=np.zeros((19, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        project(x[None], "pca")
    with pytest.raises(ValueError, match="at least 250"):
        project(x, "tsne", max_iter=100)


def test_tsne_on_few_points_lowers_the_perplexity():
    x, _ = _blobs(3, [[0, 0, 0], [9, 9, 9]], 0.3, 1)
    proj = project(x, "tsne", max_iter=250)
    assert proj.points.shape == (6, 2) and np.isfinite(proj.points).all()


# -- alignment, scores, grid ------------------------------------------------------------


def test_align_undoes_rotation_reflection_and_translation():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(30, 2))
    angle = 1.1
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (ref @ rot) * [1, -1] + [4.0, -2.0]
    np.testing.assert_allclose(align(moved, ref), ref, atol=1e-5)
    # Without reflection a mirror image cannot be matched.
    assert np.abs(align(moved, ref, reflection=False) - ref).max() > 0.1
    np.testing.assert_allclose(align(ref @ rot + 1.0, ref, reflection=False), ref, atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        align(ref, ref[:5])


def test_trustworthiness_is_one_for_an_isometric_layout_and_lower_for_noise():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(50, 2))
    x = np.c_[plane, np.zeros((50, 3))]
    assert trustworthiness(x, plane * 3.0 + 1.0) == pytest.approx(1.0)
    assert trustworthiness(x, rng.normal(size=(50, 2))) < 0.8
    # Few points: n_neighbors is lowered below n / 2 instead of failing.
    assert 0.0 <= trustworthiness(x[:5], plane[:5], n_neighbors=5) <= 1.0
    with pytest.raises(ValueError, match="differ in length"):
        trustworthiness(x, plane[:10])


def _knn_reference(x, y, k):
    correct = 0
    for i in range(len(x)):
        d = [(float(np.sum((x[i] - x[j]) ** 2)), j) for j in range(len(x)) if j != i]
        d.sort()  # by distance, then index
        near = [y[j] for _, j in d[:k]]
        counts = {c: near.count(c) for c in near}
        best = max(counts.values())
        vote = next(c for c in near if counts[c] == best)
        correct += vote == y[i]
    return correct / len(x)


def test_knn_accuracy_by_hand_and_against_brute_force():
    # 1-D: points 0, 1, 2 are class 0, points 10, 11 class 1, point 3 is class 1 (an outlier).
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    # k=1: 0->1 ok, 1->0 ok, 2->1 ok (tie 1 vs 3 goes to the lower index), 3->2 wrong,
    # 10->11 ok, 11->10 ok.
    assert knn_accuracy(x, y, k=1) == pytest.approx(5 / 6)
    # k=2: 3's neighbours are 2 and 1 (class 0, 0) -> wrong; 10's are 11 (1) and 3 (1) -> ok.
    assert knn_accuracy(x, y, k=2) == pytest.approx(5 / 6)
    rng = np.random.default_rng(3)
    xs = rng.integers(0, 3, size=(80, 2)).astype(np.float64)  # many exact ties
    ys = rng.integers(0, 3, size=80)
    for k in (1, 2, 4, 7):
        assert knn_accuracy(xs, ys, k) == pytest.approx(_knn_reference(xs, ys, k)), k
    clusters, labels = _blobs(20, np.eye(3) * 8, 1.0, 0)
    assert knn_accuracy(clusters, labels) == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        knn_accuracy(x, y, k=0)


def test_grid_assignment_recovers_a_shuffled_grid():
    rows, cols = 4, 5
    r, c = np.divmod(np.arange(rows * cols), cols)
    points = np.stack([c * 2.0, -r * 3.0], axis=1)  # row 0 at the top (largest y)
    perm = np.random.default_rng(0).permutation(rows * cols)
    cells = grid_assignment(points[perm], rows, cols)
    np.testing.assert_array_equal(cells, perm)


def test_grid_assignment_is_optimal_against_brute_force():
    rng = np.random.default_rng(1)
    points = rng.random((6, 2))
    cells = grid_assignment(points, 2, 3)
    lo, hi = points.min(0), points.max(0)
    unit = (points - lo) / (hi - lo)
    centres = np.array([[(c + 0.5) / 3, 1 - (r + 0.5) / 2] for r in range(2) for c in range(3)])
    cost = lambda assign: sum(np.sum((unit[i] - centres[a]) ** 2) for i, a in enumerate(assign))
    best = min(cost(p) for p in itertools.permutations(range(6)))
    assert cost(cells) == pytest.approx(best)
    assert len(set(cells.tolist())) == 6
    with pytest.raises(ValueError, match="fewer cells"):
        grid_assignment(points, 2, 2)


# -- rendering -------------------------------------------------------------------------------


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
    x, labels = _blobs(15, np.eye(3) * 8, 0.5, 0)
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


# -- the trained demo model ------------------------------------------------------------------


def test_trained_demo_tsne_layout_is_trustworthy(trained_demo):
    model, x, y = trained_demo["model"], trained_demo["x_val"], trained_demo["y_val"]
    feats = extract_features(model, x)
    proj = project(feats, "tsne")
    trust = trustworthiness(feats[proj.indices], proj.points)
    knn = knn_accuracy(feats, y)
    print(
        f"\ntrained demo: t-SNE trustworthiness {trust:.4f}, kNN accuracy {knn:.4f}, "
        f"val accuracy {trained_demo['val_accuracy']:.4f}"
    )
    assert trust >= 0.9
    assert knn >= 0.9 * trained_demo["val_accuracy"]
