"""Trustworthiness and leave-one-out kNN accuracy: by hand, against a brute-force reference,
and on the trained demo model."""

import numpy as np
import pytest

from feature_helpers import blobs
from keras_cnnvis.features.embeddings import extract_features
from keras_cnnvis.features.projection import project
from keras_cnnvis.features.scores import knn_accuracy, trustworthiness


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
    clusters, labels = blobs(20, np.eye(3) * 8, 1.0, 0)
    assert knn_accuracy(clusters, labels) == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        knn_accuracy(x, y, k=0)


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
