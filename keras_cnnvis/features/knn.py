"""k nearest neighbours in a vector space, numpy only: the exact (brute-force) search and the
majority vote that every neighbour score of keras-cnnvis uses.
"""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "euclidean")


def check_metric(metric: str) -> None:
    """Raises ValueError unless `metric` is one of `METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")


def nearest(
    queries: np.ndarray,
    data: np.ndarray,
    k: int = 5,
    metric: str = "cosine",
    chunk: int = 256,
    leave_one_out: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `data` for each row of `queries` (brute force, chunked).

    `"cosine"` distance is `1 - cos(angle)` (scale-free: a vector and its multiples are at
    distance 0; an all-zero vector is at distance 1 from everything); `"euclidean"` is
    the L2 distance. Ties go to the earlier data row.

    Example:

    ```python
    idx, dist = nearest(feats_val, feats_train, k=5, metric="euclidean")
    idx, _ = nearest(feats, feats, k=5, leave_one_out=True)   # each point's k others
    ```

    Args:
        queries: float `(Q, D)`.
        data: float `(N, D)`.
        k: neighbours per query. Defaults to 5.
        metric: `"cosine"` or `"euclidean"`. Defaults to `"cosine"`.
        chunk: queries per distance block (bounds memory at `chunk * N`). Defaults to 256.
        leave_one_out: the queries are the data rows themselves, and row `i` is never its
            own neighbour. Defaults to False.

    Returns:
        `(indices, distances)`: int64 and float32 `(Q, k)`, nearest first.

    Raises:
        ValueError: for an unknown metric, mismatched dimensions or `k` out of range.
    """
    check_metric(metric)
    q = np.asarray(queries, np.float64)
    d = np.asarray(data, np.float64)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(
            f"Queries and data must be (n, D) arrays of one dimension D; got {q.shape} and "
            f"{d.shape}."
        )
    if leave_one_out and q.shape != d.shape:
        raise ValueError(
            f"leave_one_out needs the data rows as queries; got {q.shape} and {d.shape}."
        )
    available = len(d) - int(leave_one_out)
    if not 1 <= k <= available:
        raise ValueError(
            f"k={k} must be between 1 and the {available} reference examples; pass a smaller k."
        )
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    d_sq = np.sum(d * d, axis=1)
    idx_out, dist_out = [], []
    for s in range(0, len(q), chunk):
        block = q[s : s + chunk]
        if metric == "cosine":
            dist = 1.0 - block @ d.T
        else:
            sq = np.sum(block * block, axis=1)[:, None] + d_sq[None, :] - 2.0 * block @ d.T
            dist = np.sqrt(np.maximum(sq, 0.0))
        if leave_one_out:
            dist[np.arange(len(block)), np.arange(s, s + len(block))] = np.inf
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        idx_out.append(order)
        dist_out.append(np.take_along_axis(dist, order, axis=1))
    if not idx_out:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(idx_out).astype(np.int64), np.concatenate(dist_out).astype(np.float32)


def knn_vote(neighbor_labels: np.ndarray) -> np.ndarray:
    """Majority class of each row of neighbour labels (nearest first); a tie goes to the
    tied class whose member is nearest."""
    neighbor_labels = np.asarray(neighbor_labels, np.int64)
    out = np.empty(len(neighbor_labels), np.int64)
    for i, row in enumerate(neighbor_labels):
        classes, counts = np.unique(row, return_counts=True)
        tied = set(classes[counts == counts.max()].tolist())
        out[i] = next(c for c in row if c in tied)
    return out


def vote_accuracy(indices: np.ndarray, reference_labels: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of queries whose neighbours' vote (`knn_vote`) is their own label.

    Args:
        indices: `(Q, k)` neighbour indices into the reference, nearest first.
        reference_labels: `(N,)` integer labels of the reference.
        labels: `(Q,)` integer labels of the queries.

    Returns:
        The accuracy in [0, 1] as a float.
    """
    votes = knn_vote(np.asarray(reference_labels)[np.asarray(indices)])
    return float(np.mean(votes == np.asarray(labels)))
