"""2-D layouts of feature vectors: exact PCA and seeded t-SNE (capped, optionally started from
and aligned to the previous layout), Procrustes alignment, and snapping a layout to a grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_cnnvis._threads import one_blas_thread

METHODS = ("pca", "tsne")
MIN_POINTS = 4
"""The fewest points `project` embeds (t-SNE's perplexity must stay below the count)."""
EXAGGERATION_ITER = 250
"""t-SNE's first phase: iterations at momentum 0.5, with early exaggeration 12 in a fresh
layout (scikit-learn's schedule, kept when openTSNE replaced it)."""


@dataclass(frozen=True)
class Projection:
    """A 2-D layout of feature vectors.

    Attributes:
        method: `"pca"` or `"tsne"`.
        points: float32 `(n, 2)` coordinates.
        indices: int64 `(n,)` rows of the input features that were projected (all rows,
            or a seeded random subset of `max_points` rows, sorted).
        explained_variance: PCA: float32 `(2,)` variance along PC1, PC2; else None.
        explained_variance_ratio: PCA: float32 `(2,)` fractions of the total variance;
            else None.
        aligned: whether the layout was aligned onto `init` (the previous layout).
    """

    method: str
    points: np.ndarray
    indices: np.ndarray
    explained_variance: np.ndarray | None = None
    explained_variance_ratio: np.ndarray | None = None
    aligned: bool = False


def cap_indices(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """All of `range(n)`, or a seeded random subset of `max_points` of them, sorted."""
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)


def align(points: np.ndarray, reference: np.ndarray, reflection: bool = True) -> np.ndarray:
    """Rotates (and reflects) and translates `points` onto `reference` (Procrustes).

    Finds the orthogonal matrix `Q` minimising `||(P - mean P) Q - (R - mean R)||` (an
    SVD of `(P - mean P)^T (R - mean R)`, the orthogonal Procrustes problem) and returns
    `(P - mean P) Q + mean R`. Distances between points are unchanged, so a t-SNE layout
    keeps its meaning; only its arbitrary orientation now matches the reference.

    Example:

    ```python
    aligned = align(new_layout, previous_layout)
    ```

    Args:
        points: `(n, d)` the layout to move.
        reference: `(n, d)` the layout to match, same rows.
        reflection: allow a mirror image (det Q = -1). Defaults to True.

    Returns:
        A float32 `(n, d)` array.

    Raises:
        ValueError: if the shapes differ.
    """
    p = np.asarray(points, np.float64)
    r = np.asarray(reference, np.float64)
    if p.shape != r.shape or p.ndim != 2:
        raise ValueError(
            f"align needs two layouts of the same shape (n, d); got {p.shape} and {r.shape}."
        )
    pc, rc = p - p.mean(0), r - r.mean(0)
    u, _, vt = np.linalg.svd(pc.T @ rc)
    if not reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] = -u[:, -1]
    return (pc @ (u @ vt) + r.mean(0)).astype(np.float32)


def _check_features(features: Any) -> np.ndarray:
    x = np.asarray(features, np.float32)
    if x.ndim != 2:
        raise ValueError(
            f"Features must be a 2-D array (n_points, n_features); got shape {x.shape}. "
            "Use extract_features or flatten_features first."
        )
    bad_rows = ~np.isfinite(x).all(axis=1)
    if bad_rows.any():
        raise ValueError(
            f"Features contain NaN or infinite values in {int(bad_rows.sum())} of "
            f"{len(x)} rows (the model may have diverged, or the inputs hold NaN); "
            "drop those rows or fix the model before projecting."
        )
    return x


def project(
    features: np.ndarray,
    method: str = "pca",
    init: np.ndarray | None = None,
    max_points: int = 1000,
    seed: int = 0,
    pca_dims: int = 50,
    perplexity: float = 30.0,
    max_iter: int = 500,
    warm_iter: int = 250,
    n_threads: int = 1,
) -> Projection:
    """Projects feature vectors to 2-D with PCA or t-SNE.

    At most `max_points` rows are projected (a seeded random subset when there are more;
    `Projection.indices` says which). PCA is exact (full SVD of the centred features).
    t-SNE (openTSNE's Barnes-Hut gradient on one thread, exact neighbours) first reduces
    the features to `pca_dims` dimensions with PCA, uses `perplexity` (lowered to
    `(n - 1) / 3` for few points), starts from the PCA layout and runs 250 iterations with
    early exaggeration 12, then the rest of `max_iter` without, at scikit-learn's step
    size. Nothing in it is random, so equal inputs give equal layouts. (openTSNE replaced
    scikit-learn's TSNE with the same schedule: faster per iteration and as trustworthy;
    see benchmarks/results/tsne.md.)

    `init` is the previous layout of the same points (e.g. the last epoch's). For t-SNE it
    is a warm start: optimisation starts from that layout (centred, at its own scale)
    without early exaggeration, for `warm_iter` iterations, and the result is
    rotated/reflected onto it (`align`). The embedding then evolves across epochs instead
    of rearranging its clusters or jumping to an arbitrary orientation (with a fresh
    PCA-initialised t-SNE, clusters at similar distances swap places from one epoch to
    the next). For PCA, which has no free start, each axis's sign is flipped to agree
    with `init` (the principal axes stay the plot axes).

    Example:

    ```python
    pca = project(feats, "pca")
    tsne = project(feats, "tsne", init=previous.points)
    ```

    Args:
        features: `(n, D)` feature vectors.
        method: `"pca"` or `"tsne"`. Defaults to `"pca"`.
        init: `(n_projected, 2)` previous layout of the same points, or None.
            Defaults to None.
        max_points: the most rows projected. Defaults to 1000.
        seed: seed of the row subset (and openTSNE's `random_state`, which the exact
            neighbours and the PCA start leave unused). Defaults to 0.
        pca_dims: t-SNE's PCA pre-reduction dimension. Defaults to 50.
        perplexity: t-SNE perplexity. Defaults to 30.0.
        max_iter: t-SNE iterations without `init` (at least 250, the exaggerated phase).
            Defaults to 500.
        warm_iter: t-SNE iterations from `init` (at least 250). Defaults to 250. Both
            defaults are half of scikit-learn's schedule used before: the trustworthiness
            stayed within 0.01 of it (digits and the demo CNN's features, 400 and 1000
            points) and warm starts moved clusters no more (benchmarks/tsne.py).
        n_threads: OpenMP threads for t-SNE's gradient and neighbour search. One thread is
            the default because in a training process TensorFlow's threads compete for the
            cores, and OpenMP spin-waiting under contention made t-SNE many times slower (see
            benchmarks/embeddings.py and benchmarks/tsne.py). Defaults to 1.

    Returns:
        A `Projection`.

    Raises:
        ValueError: for an unknown method, fewer than 4 points, NaN/inf features, an
            `init` of the wrong shape, or invalid sizes.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if int(max_points) < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}; got {max_points}.")
    x = _check_features(features)
    if len(x) < MIN_POINTS:
        raise ValueError(
            f"project needs at least {MIN_POINTS} points to embed; got {len(x)}. Pass "
            "more images."
        )
    idx = cap_indices(len(x), int(max_points), seed)
    x = x[idx].astype(np.float64)
    if init is not None:
        init = np.asarray(init, np.float64)
        if init.shape != (len(idx), 2) or not np.isfinite(init).all():
            raise ValueError(
                f"init must be the previous finite layout of the same {len(idx)} points, "
                f"shape ({len(idx)}, 2); got shape {init.shape}."
            )
    if method == "pca":
        return _pca(x, idx, init)
    return _tsne(x, idx, init, seed, pca_dims, perplexity, max_iter, warm_iter, n_threads)


def _pca(x: np.ndarray, idx: np.ndarray, init: np.ndarray | None) -> Projection:
    centred = x - x.mean(0)
    with one_blas_thread():  # many times faster for these small matrices on a busy machine
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(len(x) - 1, 1)
    total = var.sum()
    k = min(2, len(s))
    points = np.zeros((len(x), 2))
    points[:, :k] = centred @ vt[:k].T
    explained = np.zeros(2)
    explained[:k] = var[:k]
    # Deterministic signs: the largest-|loading| entry of each axis is positive.
    for j in range(k):
        if vt[j][np.argmax(np.abs(vt[j]))] < 0:
            points[:, j] = -points[:, j]
    aligned = False
    if init is not None:
        ref = init - init.mean(0)
        for j in range(2):
            if points[:, j] @ ref[:, j] < 0:
                points[:, j] = -points[:, j]
        aligned = True
    ratio = explained / total if total > 0 else np.zeros(2)
    return Projection(
        "pca",
        points.astype(np.float32),
        idx,
        explained.astype(np.float32),
        ratio.astype(np.float32),
        aligned,
    )


def _principal(x: np.ndarray) -> np.ndarray:
    """The centred rows on all their principal axes (signs fixed as in `_pca`): a rotation,
    so every distance is kept; the first columns are the PCA reduction and start."""
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    return centred @ (vt * np.where(signs == 0, 1.0, signs)[:, None]).T


def _tsne(x, idx, init, seed, pca_dims, perplexity, max_iter, warm_iter, n_threads) -> Projection:
    if min(int(max_iter), int(warm_iter)) < 250:
        raise ValueError(
            f"max_iter and warm_iter must be at least 250 (the schedule's first phase alone "
            f"takes {EXAGGERATION_ITER}); got {max_iter} and {warm_iter}."
        )
    if float(perplexity) <= 0:
        raise ValueError(f"perplexity must be positive; got {perplexity}.")
    if int(pca_dims) < 1:
        raise ValueError(f"pca_dims must be at least 1; got {pca_dims}.")
    try:
        from openTSNE import TSNEEmbedding
        from openTSNE.affinity import PerplexityBasedNN
    except ImportError as err:  # pragma: no cover - an install requirement
        raise ImportError(
            "t-SNE layouts need openTSNE (an install requirement of keras-cnnvis): "
            "pip install openTSNE"
        ) from err
    from threadpoolctl import threadpool_limits

    n, threads = len(x), max(1, int(n_threads))
    # One BLAS thread: threaded OpenBLAS took ~0.8 s for this 400 x 64 SVD on a busy
    # 2-core machine, one thread ~1 ms (benchmarks/tsne.py). The OpenMP limit also holds
    # scikit-learn's neighbour search (inside the affinities) to `n_threads`.
    with one_blas_thread(), threadpool_limits(limits=threads, user_api="openmp"):
        scores = _principal(x)
        affinities = PerplexityBasedNN(
            scores[:, : int(pca_dims)],
            perplexity=min(float(perplexity), (n - 1) / 3.0),
            method="exact",
            n_jobs=threads,
            random_state=int(seed),
        )
        if init is None:
            # PCA start at a tiny scale (std 1e-4 along PC1), as scikit-learn's init="pca".
            start = np.zeros((n, 2))
            start[:, : min(2, scores.shape[1])] = scores[:, :2]
            scale = start[:, 0].std()
            start *= 1e-4 / scale if scale > 0 else 1.0
        else:
            start = init - init.mean(0)
        embedding = TSNEEmbedding(
            start,
            affinities,
            negative_gradient_method="bh",
            n_jobs=threads,
            random_state=int(seed),
        )
        # scikit-learn's step: its learning rate max(n / 48, 50) times the factor 4 its
        # gradient carries and openTSNE's does not.
        rate = max(n / 12.0, 200.0)
        # scikit-learn's schedule: the first 250 iterations at momentum 0.5 (exaggerated in
        # a fresh layout), the rest at 0.8. A warm start keeps the previous layout's scale
        # and skips the exaggeration (its clusters are already formed); the gentle first
        # phase keeps its clusters in place.
        exaggeration = 12.0 if init is None else 1.0
        total = int(max_iter) if init is None else int(warm_iter)
        embedding.optimize(
            EXAGGERATION_ITER,
            exaggeration=exaggeration,
            momentum=0.5,
            learning_rate=rate,
            inplace=True,
        )
        if total > EXAGGERATION_ITER:
            embedding.optimize(
                total - EXAGGERATION_ITER, momentum=0.8, learning_rate=rate, inplace=True
            )
    points = np.asarray(embedding, np.float64)
    aligned = init is not None
    if aligned:
        points = align(points, init)
    return Projection("tsne", np.asarray(points, np.float32), idx, aligned=aligned)


def grid_assignment(
    points: np.ndarray, rows: int | None = None, cols: int | None = None
) -> np.ndarray:
    """Snaps 2-D points to the cells of a regular grid, one point per cell.

    The layout is scaled to the unit square per axis and each point is assigned to a cell
    centre by linear assignment (`scipy.optimize.linear_sum_assignment`, minimising the
    total squared distance), so neighbours in the layout stay neighbours in the grid (the
    "t-SNE grid" of images). Row 0 is the top of the grid (largest y).

    Example:

    ```python
    cells = grid_assignment(tsne.points)       # cell of point i = cells[i], row-major
    ```

    Args:
        points: `(n, 2)` layout.
        rows: grid rows. Defaults to None (`ceil(n / cols)`).
        cols: grid columns. Defaults to None (`ceil(sqrt(n))`).

    Returns:
        An int64 `(n,)` array of row-major cell indices (distinct).

    Raises:
        ValueError: if the grid has fewer cells than points or the points are not finite.
    """
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or not np.isfinite(p).all():
        raise ValueError(f"grid_assignment needs finite (n, 2) points; got shape {p.shape}.")
    n = len(p)
    cols = int(cols) if cols else max(1, int(np.ceil(np.sqrt(n))))
    rows = int(rows) if rows else max(1, int(np.ceil(n / cols)))
    if rows * cols < n:
        raise ValueError(f"A {rows}x{cols} grid has fewer cells than the {n} points.")
    from scipy.optimize import linear_sum_assignment

    lo, hi = p.min(0), p.max(0)
    unit = (p - lo) / np.where(hi > lo, hi - lo, 1.0)
    r, c = np.divmod(np.arange(rows * cols), cols)
    centres = np.stack([(c + 0.5) / cols, 1.0 - (r + 0.5) / rows], axis=1)
    cost = ((unit[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    row_ind, col_ind = linear_sum_assignment(cost)
    cells = np.empty(n, np.int64)
    cells[row_ind] = col_ind
    return cells
