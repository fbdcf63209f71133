"""NearestNeighborsCallback in real fits: grids and kNN accuracies read back from the event
files and compared with the core functions, misconfiguration before the first epoch."""

import os

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis.callbacks import NearestNeighborsCallback
from keras_cnnvis.callbacks.neighbors import neighbor_grid, pick_queries
from keras_cnnvis.features.neighbors import neighbor_accuracy, nearest_neighbors
from keras_cnnvis.rendering import image

L = keras.layers


def test_pick_queries_takes_classes_in_turn():
    labels = np.array([2, 2, 0, 2, 1, 0, 1])
    np.testing.assert_array_equal(pick_queries(labels, 5), [0, 2, 4, 1, 5])
    np.testing.assert_array_equal(pick_queries(labels, 100), [0, 2, 4, 1, 5, 6, 3])


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
