"""PCA and t-SNE layouts, Procrustes alignment and grid assignment, checked against the
covariance eigendecomposition, isometries, brute force, scikit-learn's TSNE (the t-SNE that
openTSNE replaced) and properties that can fail."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import procrustes

from feature_helpers import blobs
from keras_cnnvis.features.projection import (
    align,
    cap_indices,
    grid_assignment,
    project,
)
from keras_cnnvis.features.scores import knn_accuracy, trustworthiness


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
    x, _ = blobs(20, [[0, 0, 0], [5, 1, 0], [0, 4, 1]], 0.5, 0)
    first = project(x, "pca")
    flipped = project(x, "pca", init=first.points * [-1, 1])
    np.testing.assert_allclose(flipped.points, first.points * [-1, 1], atol=1e-5)
    assert flipped.aligned and not first.aligned


def test_tsne_cap_is_enforced_and_result_is_seeded():
    x, _ = blobs(300, [[0] * 8, [6] * 8, [0, 6] * 4, [6, 0] * 4], 1.0, 2)
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


def _digits(n):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[:n] / 16.0, digits.target[:n]


def _sklearn_tsne(x, init=None, max_iter=1000, warm_iter=500):
    """scikit-learn's Barnes-Hut TSNE exactly as `project` called it before openTSNE: the
    features on their first 50 principal axes, PCA start with exaggeration 12, or `init`
    (centred) without; the result aligned onto `init`."""
    from sklearn.manifold import TSNE

    n = len(x)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:50].T
    tsne = TSNE(
        2,
        perplexity=min(30.0, (n - 1) / 3.0),
        init="pca" if init is None else init - init.mean(0),
        early_exaggeration=12.0 if init is None else 1.0,
        learning_rate=max(n / 48.0, 50.0),
        max_iter=max_iter if init is None else warm_iter,
        random_state=0,
    )
    points = tsne.fit_transform(reduced)
    return points if init is None else align(points, init)


def _displacement(points, previous):
    """Mean distance moved, over the previous layout's mean distance from its centre."""
    spread = np.linalg.norm(previous - previous.mean(0), axis=1).mean()
    return np.linalg.norm(points - previous, axis=1).mean() / spread


def test_tsne_on_digits_is_as_trustworthy_as_scikit_learn_and_far_above_pca():
    x, labels = _digits(500)
    ours = project(x, "tsne")
    t_ours = trustworthiness(x, ours.points)
    t_sklearn = trustworthiness(x, _sklearn_tsne(x))
    t_pca = trustworthiness(x, project(x, "pca").points)
    # The rule for replacing scikit-learn: within 0.01 of its trustworthiness.
    assert t_ours >= t_sklearn - 0.01, (t_ours, t_sklearn)
    # t-SNE closes most of PCA's gap to a perfect layout (PCA: ~0.85 on digits).
    assert t_ours > t_pca + 0.8 * (1.0 - t_pca), (t_ours, t_pca)
    # The classes stay as separable in the layout as in feature space.
    assert knn_accuracy(ours.points, labels) >= knn_accuracy(x, labels) - 0.02


def test_tsne_warm_start_from_a_converged_layout_stays_on_it():
    x, _ = _digits(400)
    first = project(x, "tsne")
    again = project(x, "tsne", init=first.points)
    np.testing.assert_array_equal(project(x, "tsne", init=first.points).points, again.points)
    moved = _displacement(again.points, first.points)
    # scikit-learn's warm start (the behaviour before openTSNE) moves it about as little.
    reference = _sklearn_tsne(x)
    moved_sklearn = _displacement(_sklearn_tsne(x, init=reference), reference)
    assert moved <= moved_sklearn + 0.05, (moved, moved_sklearn)
    assert moved < 0.1, moved
    assert trustworthiness(x, again.points) >= trustworthiness(x, first.points) - 0.01


def test_tsne_iterations_are_used():
    x, _ = _digits(200)
    short = project(x, "tsne", max_iter=250).points
    longer = project(x, "tsne", max_iter=400).points
    # 250 iterations are the early-exaggeration phase alone: clusters squeezed together,
    # the layout far smaller than after 150 more iterations without exaggeration.
    spread = lambda p: np.linalg.norm(p - p.mean(0), axis=1).mean()
    assert spread(longer) > 5.0 * spread(short), (spread(short), spread(longer))
    warm = [project(x, "tsne", init=longer, warm_iter=w).points for w in (250, 300)]
    assert not np.array_equal(warm[0], warm[1])


def test_tsne_of_duplicated_rows_keeps_them_together():
    # Dead ReLU units early in training: many images share one all-zero feature vector.
    x, labels = blobs(40, np.eye(3) * 8, 1.0, 7)
    x = np.r_[x, np.zeros((60, 3))]
    labels = np.r_[labels, np.full(60, 3)]
    proj = project(x, "tsne", max_iter=500)
    assert np.isfinite(proj.points).all()
    assert knn_accuracy(proj.points, labels, k=5) == 1.0


def test_opentsne_is_imported_only_when_a_tsne_runs():
    code = (
        "import sys; import keras_cnnvis.features.projection as p; "
        "import numpy as np; p.project(np.eye(6), 'pca'); "
        "assert 'openTSNE' not in sys.modules; "
        "p.project(np.eye(6), 'tsne', max_iter=250); assert 'openTSNE' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tsne_keeps_separated_clusters_apart():
    x, labels = blobs(30, np.eye(4) * 10, 1.0, 5)
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
    with pytest.raises(ValueError, match="at least 250"):
        project(x, "tsne", init=np.zeros((20, 2)), warm_iter=249)
    with pytest.raises(ValueError, match="perplexity must be positive"):
        project(x, "tsne", perplexity=0)
    with pytest.raises(ValueError, match="pca_dims must be at least 1"):
        project(x, "tsne", pca_dims=0)


def test_tsne_on_few_points_lowers_the_perplexity():
    x, _ = blobs(3, [[0, 0, 0], [9, 9, 9]], 0.3, 1)
    proj = project(x, "tsne", max_iter=250)
    assert proj.points.shape == (6, 2) and np.isfinite(proj.points).all()
    # The two triples stay apart: each point's nearest neighbour is in its own triple.
    d = np.linalg.norm(proj.points[:, None] - proj.points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(1) // 3 == np.arange(6) // 3).all()
    # One-dimensional features (a single principal axis) still get a 2-D layout.
    line = project(np.arange(8.0)[:, None], "tsne", max_iter=250).points
    assert line.shape == (8, 2) and np.isfinite(line).all()


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
