"""Scores of a feature space and of its 2-D layouts: trustworthiness of a projection and
leave-one-out k-nearest-neighbour accuracy in feature space.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.features.knn import nearest, vote_accuracy


def _finite_2d(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a finite 2-D array (n, d); got shape {x.shape}.")
    return x


def trustworthiness(features: np.ndarray, points: np.ndarray, n_neighbors: int = 5) -> float:
    """How well a 2-D layout keeps neighbourhoods: 1 means no false neighbours.

    `sklearn.manifold.trustworthiness` (Venna & Kaski): points that are among a point's
    `n_neighbors` nearest in the layout but not in feature space are penalised by their
    feature-space rank. `n_neighbors` is lowered to `(n - 1) // 2` for few points
    (sklearn requires fewer than n / 2).

    Example:

    ```python
    t = trustworthiness(feats[proj.indices], proj.points)
    ```

    Args:
        features: `(n, D)` feature vectors.
        points: `(n, 2)` their layout (same rows).
        n_neighbors: neighbourhood size. Defaults to 5.

    Returns:
        The trustworthiness in [0, 1] as a float.

    Raises:
        ValueError: for mismatched rows, fewer than 3 points or non-finite values.
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    x = _finite_2d(features, "features")
    y = _finite_2d(points, "points")
    if len(x) != len(y):
        raise ValueError(f"features ({len(x)} rows) and points ({len(y)} rows) differ in length.")
    if len(x) < 3:
        raise ValueError(f"trustworthiness needs at least 3 points; got {len(x)}.")
    k = max(1, min(int(n_neighbors), (len(x) - 1) // 2))
    return float(sk_trustworthiness(x, y, n_neighbors=k))


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of the labels in feature space.

    Each point is classified by a majority vote (`knn_vote`) of its `k` nearest other
    points (Euclidean distance on the raw features, the point itself left out, equal
    distances in index order); a tie between classes goes to the tied class whose nearest
    member is closest. The score is the fraction of points
    whose vote equals their label: high when classes form separate clusters in feature
    space, whatever the 2-D projection shows. `k` is lowered to `n - 1` for few points.

    Example:

    ```python
    acc = knn_accuracy(feats, y_val)    # e.g. 0.97 for a trained model
    ```

    Args:
        features: `(n, D)` feature vectors.
        labels: `(n,)` integer labels.
        k: neighbours per vote. Defaults to 5.

    Returns:
        The accuracy in [0, 1] as a float.

    Raises:
        ValueError: for mismatched rows, fewer than 2 points, `k < 1` or non-finite values.
    """
    x = _finite_2d(features, "features")
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"features ({len(x)} rows) and labels ({len(y)}) differ in length.")
    if len(x) < 2:
        raise ValueError(f"knn_accuracy needs at least 2 points; got {len(x)}.")
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k}.")
    k = min(int(k), len(x) - 1)
    indices, _ = nearest(x, x, k, "euclidean", leave_one_out=True)
    return vote_accuracy(indices, y, y)
