"""Nearest neighbours: hand-computed distances, scikit-learn's brute-force search as a peer,
the penultimate-layer default, feature vs pixel kNN on the trained demo, and the callback.
"""

import os

import keras
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import image
from keras_cnnvis.callbacks import NearestNeighborsCallback
from keras_cnnvis.callbacks.neighbors import neighbor_grid, pick_queries
from keras_cnnvis.gradients import capture_outputs
from keras_cnnvis.neighbors import (
    FeatureFunction,
    neighbor_accuracy,
    knn_vote,
    nearest,
    nearest_neighbors,
    pixel_vectors,
)

L = keras.layers


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


def test_default_features_are_the_input_of_the_last_dense_layer(trained_demo):
    model = trained_demo["model"]
    x = trained_demo["x_val"][:20]
    embed = FeatureFunction(model, batch_size=8)
    assert embed.description == "predictions:input"
    with capture_outputs(model, ["features", "global_pool"]) as cap:
        model(x, training=False)
    np.testing.assert_allclose(embed(x), cap["features"], rtol=1e-5, atol=1e-6)
    pooled = FeatureFunction(model, "global_pool")(x)
    np.testing.assert_allclose(pooled, cap["global_pool"], rtol=1e-5, atol=1e-6)
    conv = FeatureFunction(model, "conv4")(x[:2])
    assert conv.shape == (2, 8 * 8 * 64)


def test_feature_space_knn_clearly_beats_pixel_space(trained_demo):
    d = trained_demo
    args = (d["x_train"], d["y_train"], d["x_val"], d["y_val"])
    feature = neighbor_accuracy(d["model"], *args, k=5)
    pixel = neighbor_accuracy(None, *args, k=5, space="pixel")
    # 5 balanced classes: chance is 0.2. Measured: feature 0.97, pixel 0.23 (cosine, k=5).
    assert feature >= 0.85, feature
    assert pixel <= 0.45, pixel
    assert feature - pixel >= 0.4
    # Feature-space neighbours mostly share the query's class; pixel-space ones do not.
    nn = nearest_neighbors(d["model"], d["x_val"][:50], d["x_train"], k=5)
    same = d["y_train"][nn.indices] == d["y_val"][:50, None]
    assert same.mean() > 0.8


def test_pixel_space_needs_no_model_and_finds_the_image_itself():
    rng = np.random.default_rng(1)
    data = rng.random((30, 6, 5, 3), dtype=np.float32)
    nn = nearest_neighbors(None, data[[4, 17]], data, k=3, space="pixel", metric="euclidean")
    np.testing.assert_array_equal(nn.indices[:, 0], [4, 17])
    np.testing.assert_allclose(nn.distances[:, 0], 0.0, atol=1e-6)
    assert nn.layer is None and nn.space == "pixel"
    flat = pixel_vectors(data)
    assert flat.shape == (30, 90) and np.array_equal(flat[3], data[3].ravel())


def test_bad_input_raises_clear_errors(trained_demo):
    model = trained_demo["model"]
    x = trained_demo["x_val"][:10]
    with pytest.raises(
        ValueError,
        match=r"The queries have shape \(2, 32, 32, 3\); model 'demo_cnn' expects \(N, 64, 64, 3\)",
    ):
        nearest_neighbors(model, np.zeros((2, 32, 32, 3)), x)
    with pytest.raises(ValueError, match=r"k=11 must be between 1 and the 10 images in data"):
        nearest_neighbors(model, x[:2], x, k=11)
    with pytest.raises(ValueError, match="space must be one of"):
        nearest_neighbors(model, x[:2], x, space="latent")
    with pytest.raises(ValueError, match="metric must be one of"):
        nearest_neighbors(model, x[:2], x, metric="manhattan")
    with pytest.raises(ValueError, match=r"The queries have shape \(64, 64, 3\); expected a batch of images \(N, 64, 64, 3\)"):
        nearest_neighbors(model, x[0], x)
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        nearest_neighbors(model, x[:2], x, layer="nope")
    with pytest.raises(ValueError, match=r"Labels must be one class index .* per example \(10\)"):
        neighbor_accuracy(model, x, np.zeros(9), x, np.zeros(10))
    no_dense = keras.Sequential(
        [keras.Input((8, 8, 1)), L.Conv2D(2, 3), L.GlobalAveragePooling2D()]
    )
    with pytest.raises(ValueError, match="has no Dense layer.*pass layer="):
        nearest_neighbors(no_dense, np.zeros((2, 8, 8, 1)), np.zeros((6, 8, 8, 1)))


def test_pick_queries_takes_classes_in_turn():
    labels = np.array([2, 2, 0, 2, 1, 0, 1])
    np.testing.assert_array_equal(pick_queries(labels, 5), [0, 2, 4, 1, 5])
    np.testing.assert_array_equal(pick_queries(labels, 100), [0, 2, 4, 1, 5, 6, 3])


def test_neighbor_grid_frames_by_class():
    q = np.zeros((2, 4, 4, 1), np.float32)
    ref = np.ones((3, 4, 4, 1), np.float32)
    grid, geo = neighbor_grid(
        q, np.array([0, 1]), ref, np.array([0, 1, 1]), np.array([[0, 1], [2, 0]]), target_tile=8
    )
    assert geo == {"rows": 2, "cols": 3, "tile": [8, 8], "pad": 1, "scale": 1}
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    corner = lambda r, c: tuple(grid[1 + r * 9, 1 + c * 9])  # noqa: E731
    assert corner(0, 0) == pytest.approx((0.1, 0.3, 1.0))  # query: blue
    assert corner(0, 1) == pytest.approx((0.0, 0.75, 0.0))  # same class: green
    assert corner(0, 2) == pytest.approx((0.9, 0.0, 0.0))  # other class: red
    assert corner(1, 1) == pytest.approx((0.0, 0.75, 0.0)) and corner(1, 2) == pytest.approx(
        (0.9, 0.0, 0.0)
    )
    assert tuple(grid[4, 4 + 9]) == (1.0, 1.0, 1.0)  # inside a neighbour tile: the image


# -- NearestNeighborsCallback --------------------------------------------------------------


def small_classifier():
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, activation="relu", name="conv")(i)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(16, activation="relu", name="hidden")(x)
    model = keras.Model(i, L.Dense(3, activation="softmax", name="out")(x), name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 90)
    x = rng.random((90, 12, 12, 3), dtype=np.float32) * 0.5
    x[..., 0] += 0.5 * (y == 0)[:, None, None]  # class shows in one colour channel
    x[..., 1] += 0.5 * (y == 1)[:, None, None]
    return x, y


def test_callback_logs_grids_and_accuracies_in_a_real_fit(tmp_path, data):
    x, y = data
    model = small_classifier()
    ref, query = (x[:60], y[:60]), (x[60:], y[60:])
    cb = NearestNeighborsCallback(str(tmp_path), ref, query, k=3, n_show=4, on_error="raise")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert os.listdir(tmp_path) == ["cnnvis"]
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {
        "neighbors/feature",
        "neighbors/pixel",
        "neighbors/knn_accuracy_feature",
        "neighbors/knn_accuracy_pixel",
    }
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    feature = neighbor_accuracy(model, *ref, *query, k=3)
    pixel = neighbor_accuracy(None, *ref, *query, k=3, space="pixel")
    assert run["neighbors/knn_accuracy_feature"][-1].value == pytest.approx(feature)
    assert [r.value for r in run["neighbors/knn_accuracy_pixel"]] == pytest.approx([pixel] * 3)
    shown = pick_queries(query[1], 4)
    nn = nearest_neighbors(model, query[0][shown], ref[0], k=3)
    grid, geo = neighbor_grid(query[0][shown], query[1][shown], ref[0], ref[1], nn.indices)
    logged = run["neighbors/feature"][-1].value[0]
    np.testing.assert_array_equal(logged[..., ::-1], image.to_uint8(grid))
    assert geo["rows"] == 4 and geo["cols"] == 4 and logged.shape[:2] == (4 * 49 + 1, 4 * 49 + 1)


def test_callback_with_a_chosen_layer_and_euclidean_metric(tmp_path, data):
    x, y = data
    model = small_classifier()
    cb = NearestNeighborsCallback(
        str(tmp_path),
        (x[:60], y[:60]),
        (x[60:], y[60:]),
        layer="gap",
        k=1,
        metric="euclidean",
        every_n_epochs=2,
        log_initial=False,
        on_error="raise",
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    expected = neighbor_accuracy(
        model, x[:60], y[:60], x[60:], y[60:], k=1, layer="gap", metric="euclidean"
    )
    assert [r.step for r in run["neighbors/knn_accuracy_feature"]] == [2]
    assert run["neighbors/knn_accuracy_feature"][0].value == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer": "nope"}, "No layer named 'nope'"),
        ({"k": 61}, r"k=61 is larger than the 60 reference images"),
        (
            {"query": np.zeros((4, 10, 10, 3))},
            r"The (reference|query)_data images have shape \(\d+, 10, 10, 3\); model 'tiny' expects \(N, 12, 12, 3\)",
        ),
    ],
)
def test_callback_misconfiguration_raises_before_the_first_epoch(tmp_path, data, kwargs, message):
    x, y = data
    query_x = kwargs.pop("query", x[60:])
    model = small_classifier()
    epochs = EpochsSeen()
    cb = NearestNeighborsCallback(
        str(tmp_path), (x[:60], y[:60]), (query_x, y[60 : 60 + len(query_x)]), **kwargs
    )
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[epochs, cb])
    assert epochs.begun == [] and not (tmp_path / "cnnvis").exists()


def test_callback_constructor_validation(data):
    x, y = data
    with pytest.raises(ValueError, match=r"reference_data must be a pair \(images, labels\)"):
        NearestNeighborsCallback("x", x, (x, y))
    with pytest.raises(ValueError, match=r"Labels must be one class index .* per example \(90\)"):
        NearestNeighborsCallback("x", (x, y[:5]), (x, y))
    with pytest.raises(ValueError, match="metric must be one of"):
        NearestNeighborsCallback("x", (x, y), (x, y), metric="l1")
    with pytest.raises(ValueError, match="k and n_show must be >= 1"):
        NearestNeighborsCallback("x", (x, y), (x, y), k=0)
