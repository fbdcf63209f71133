"""Nearest-neighbour search and vote: hand-computed distances, scikit-learn's brute-force
search as a peer, leave-one-out search against a loop, and the tie rule of the vote."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from keras_cnnvis.features.knn import knn_vote, nearest, vote_accuracy


def test_hand_computed_distances():
    q = np.array([[1.0, 0.0]])
    data = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    idx, dist = nearest(q, data, k=4, metric="cosine")
    # cos distances: 0, 1, 1 - 1/sqrt(2), 1 (zero vector); ties keep data order.
    np.testing.assert_array_equal(idx, [[0, 2, 1, 3]])
    np.testing.assert_allclose(dist, [[0.0, 1 - 1 / np.sqrt(2), 1.0, 1.0]], atol=1e-7)
    idx, dist = nearest(q, data, k=4, metric="euclidean")
    # L2: 1, sqrt(2), 1, 1 -> order 0, 2, 3 (ties by index), then 1.
    np.testing.assert_array_equal(idx, [[0, 2, 3, 1]])
    np.testing.assert_allclose(dist, [[1.0, 1.0, 1.0, np.sqrt(2)]], atol=1e-7)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_matches_scikit_learn(metric):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 17))
    queries = rng.normal(size=(40, 17))
    idx, dist = nearest(queries, data, k=7, metric=metric, chunk=16)
    ref = NearestNeighbors(n_neighbors=7, algorithm="brute", metric=metric).fit(data)
    ref_dist, ref_idx = ref.kneighbors(queries)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-6)


def test_knn_vote_majority_and_ties():
    votes = knn_vote(np.array([[2, 1, 1, 3, 0], [1, 2, 2, 1, 3], [4, 4, 0, 0, 0], [3, 3, 3, 3, 3]]))
    # Row 1: classes 1 and 2 tie twice each -> the nearest of them (1) wins.
    np.testing.assert_array_equal(votes, [1, 1, 0, 3])


def test_leave_one_out_never_finds_the_point_itself_and_keeps_index_order():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=(60, 2)).astype(np.float64)  # many exact duplicates
    idx, dist = nearest(x, x, k=6, metric="euclidean", chunk=7, leave_one_out=True)
    for i in range(len(x)):
        others = sorted((float(np.linalg.norm(x[i] - x[j])), j) for j in range(len(x)) if j != i)
        assert idx[i].tolist() == [j for _, j in others[:6]], i
        np.testing.assert_allclose(dist[i], [d for d, _ in others[:6]], atol=1e-7)
    with pytest.raises(ValueError, match="k=60 must be between 1 and the 59 reference"):
        nearest(x, x, k=60, leave_one_out=True)
    with pytest.raises(ValueError, match="leave_one_out needs the data rows as queries"):
        nearest(x[:5], x, k=2, leave_one_out=True)


def test_vote_accuracy_counts_the_queries_whose_vote_is_their_label():
    reference_labels = np.array([0, 1, 1, 2])
    indices = np.array([[0, 1, 2], [1, 0, 3], [3, 3, 0], [2, 0, 1]])
    # Votes: 1 (two 1s), tie 1/0/2 -> the nearest (1), 2, 1 (two 1s).
    assert vote_accuracy(indices, reference_labels, [1, 1, 2, 0]) == pytest.approx(3 / 4)
    assert vote_accuracy(indices, reference_labels, [0, 0, 0, 0]) == 0.0
