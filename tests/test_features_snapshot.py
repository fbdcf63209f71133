"""The embedding monitor's core: one snapshot equals its building blocks run by hand (features,
predicted classes, kNN accuracy, PCA/t-SNE, trustworthiness), warm starts, a diverged model,
binary heads, the cnnvis record and the class names."""

import keras
import numpy as np
import pytest

from keras_cnnvis.features.embeddings import LayerFeatures, extract_features
from keras_cnnvis.features.projection import project
from keras_cnnvis.features.scores import knn_accuracy, trustworthiness
from keras_cnnvis.features.snapshot import (
    check_methods,
    embedding_classes,
    embedding_payload,
    embedding_snapshot,
)

SHAPE = (8, 8, 3)


def classifier(units=3, activation="softmax", feat_activation="relu", seed=0):
    keras.utils.set_random_seed(seed)
    i = keras.Input(SHAPE)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(i)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, activation=feat_activation, name="feat")(x)
    return keras.Model(i, keras.layers.Dense(units, activation=activation, name="out")(x))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.arange(36) % 3
    x = rng.random((36, *SHAPE)).astype(np.float32) * 0.5
    x[np.arange(36), :, :, y] += 0.5  # the class is the brightest channel
    return x, y


def test_a_snapshot_is_its_building_blocks(data):
    x, y = data
    model = classifier()
    snap = embedding_snapshot(model, x, y, ("pca", "tsne"), tsne_iter=250, knn_k=3)
    feats, probs = extract_features(model, x, return_outputs=True)
    assert snap.layer == "feat" and snap.nonfinite == 0
    np.testing.assert_allclose(snap.features, feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(snap.labels, y)
    np.testing.assert_array_equal(snap.predictions, np.argmax(probs, axis=1))
    assert snap.knn_accuracy == pytest.approx(knn_accuracy(feats, y, 3))
    for method in ("pca", "tsne"):
        expected = project(snap.features, method, max_iter=250)
        proj = snap.projections[method]
        np.testing.assert_array_equal(proj.points, expected.points)
        assert not proj.aligned
        trust = trustworthiness(snap.features, proj.points)
        assert snap.scores[method] == {
            "trustworthiness": pytest.approx(trust),
            "knn_accuracy": snap.knn_accuracy,
        }
    assert set(snap.layouts) == {"pca", "tsne"}
    assert snap.layouts["tsne"] is snap.projections["tsne"].points


def test_the_next_snapshot_starts_from_the_previous_layout(data):
    x, y = data
    source = LayerFeatures(classifier())
    first = embedding_snapshot(source, x, y, "tsne", tsne_iter=250)
    later = embedding_snapshot(source, x, y, "tsne", first.layouts, tsne_iter=250)
    warm = project(later.features, "tsne", init=first.layouts["tsne"])
    assert later.projections["tsne"].aligned
    np.testing.assert_array_equal(later.projections["tsne"].points, warm.points)
    # A layout of other points cannot start this one: a fresh layout instead.
    other = embedding_snapshot(source, x, y, "tsne", {"tsne": np.zeros((5, 2))}, tsne_iter=250)
    assert not other.projections["tsne"].aligned
    np.testing.assert_array_equal(other.projections["tsne"].points, first.layouts["tsne"])


def test_non_finite_features_stop_the_snapshot(data):
    x, y = data
    model = classifier(feat_activation=None)
    layer = model.get_layer("feat")
    layer.set_weights([np.full_like(w, 3e38) for w in layer.get_weights()])
    snap = embedding_snapshot(model, x, y, ("pca", "tsne"))
    assert snap.nonfinite == 36 and snap.features.shape == (36, 5)
    assert snap.predictions is None and snap.knn_accuracy is None and snap.projections == {}


def test_one_logit_and_one_sigmoid_unit_predict_the_same_classes(data):
    x, y = data
    logit = classifier(units=1, activation=None)
    sigmoid = classifier(units=1, activation="sigmoid")
    sigmoid.set_weights(logit.get_weights())
    z = logit.predict(x, verbose=0)[:, 0]
    w, b = logit.get_layer("out").get_weights()
    for model in (logit, sigmoid):  # centre the logit so that both classes occur
        model.get_layer("out").set_weights([w, b - np.median(z)])
    expected = (z > np.median(z)).astype(np.int64)
    assert 10 <= expected.sum() <= 26
    for model in (logit, sigmoid):
        snap = embedding_snapshot(model, x, y % 2, "pca")
        np.testing.assert_array_equal(snap.predictions, expected)


def test_the_record_follows_the_projected_rows(data):
    x, y = data
    snap = embedding_snapshot(classifier(), x, y, ("pca", "tsne"), max_points=20, tsne_iter=250)
    user_rows = np.arange(100, 136)  # where the images sit in the user's data
    sprite = {"tag": "embedding/sprite", "single_image_dim": [8, 8], "per_row": 6}
    for method in ("pca", "tsne"):
        proj = snap.projections[method]
        assert len(proj.indices) == 20
        record = embedding_payload(snap, method, ["a", "b", "c"], user_rows, sprite)
        np.testing.assert_array_equal(record["indices"], user_rows[proj.indices])
        np.testing.assert_array_equal(record["labels"], y[proj.indices])
        np.testing.assert_array_equal(record["predictions"], snap.predictions[proj.indices])
        np.testing.assert_allclose(record["points"], proj.points, rtol=1e-4)
        assert record["points"][0][0] == float(f"{proj.points[0, 0]:.5g}")
        assert (record["method"], record["layer"], record["n_features"]) == (method, "feat", 5)
        assert record["sprite"] is sprite and record["projector"] is None
        assert record["scores"] == snap.scores[method] and record["aligned"] is False
    ratio = embedding_payload(snap, "pca", ["a", "b", "c"])["explained_variance_ratio"]
    assert ratio == [round(float(v), 5) for v in snap.projections["pca"].explained_variance_ratio]
    assert "explained_variance_ratio" not in embedding_payload(snap, "tsne", ["a", "b", "c"])
    plain = embedding_payload(snap, "pca", ["a", "b", "c"])
    np.testing.assert_array_equal(plain["indices"], snap.projections["pca"].indices)


def test_class_names_and_classes_without_images():
    labels = np.array([0, 2, 2, 0])
    assert embedding_classes(labels, np.zeros((2, 4))) == (
        ["class 0", "class 1", "class 2", "class 3"],
        ["class 1", "class 3"],
    )
    assert embedding_classes(labels, np.zeros((2, 1))) == (
        ["class 0", "class 1", "class 2"],
        ["class 1"],
    )
    assert embedding_classes(labels, None, ["a", "b", "c"]) == (["a", "b", "c"], ["b"])
    with pytest.raises(ValueError, match="Label 2 has no name: class_names has 2 entries"):
        embedding_classes(labels, None, ["a", "b"])


def test_bad_arguments(data):
    x, y = data
    assert check_methods("pca") == ("pca",)
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        check_methods(())
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        embedding_snapshot(classifier(), x, y, ("umap",))
    with pytest.raises(ValueError, match="spatial must be one of"):
        embedding_snapshot(classifier(), x, y, spatial="mean")
    with pytest.raises(ValueError, match=r"Labels must be one class index .* per example \(36\)"):
        embedding_snapshot(classifier(), x, y[:30])
    with pytest.raises(ValueError, match=r"The embedding images have shape \(2, 6, 6, 3\)"):
        embedding_snapshot(classifier(), np.zeros((2, 6, 6, 3)), [0, 1])
