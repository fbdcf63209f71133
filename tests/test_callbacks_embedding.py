"""EmbeddingCallback in real fits: event files read back with TensorBoard's reader, Projector
data read back through the stock Projector plugin's routes, bad input handled."""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from feature_helpers import decode_png, get, projector_client, served_tensor
from keras_cnnvis.callbacks.embedding import EmbeddingCallback, balanced_subset
from keras_cnnvis.features.embeddings import extract_features
from keras_cnnvis.features.projection import project
from keras_cnnvis.features.scores import knn_accuracy, trustworthiness

NAMES = ["red", "green", "blue"]
TAGS = {
    "embedding/knn_accuracy",
    "embedding/pca/trustworthiness",
    "embedding/tsne/trustworthiness",
    "embedding/pca",
    "embedding/tsne",
    "embedding/tsne_grid",
    "embedding/sprite",
    "json/embedding/pca",
    "json/embedding/tsne",
}


def small_cnn(n_classes=3, feat_activation="relu"):
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(i)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, activation=feat_activation, name="feat")(x)
    model = keras.Model(i, keras.layers.Dense(n_classes, activation="softmax", name="out")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture
def data():
    """Images whose dominant colour channel is the class."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.random((60, 16, 16, 3), dtype=np.float32) * 0.5
    x[np.arange(60), :, :, y] += 0.5
    return x, y


def _callback(tmp_path, data, **kwargs):
    kwargs.setdefault("n_images", 30)
    kwargs.setdefault("tsne_iter", 250)
    kwargs.setdefault("class_names", NAMES)
    kwargs.setdefault("on_error", "raise")
    return EmbeddingCallback(str(tmp_path), data=(data[0][:40], data[1][:40]), **kwargs)


def test_fit_logs_every_record_and_the_projector_serves_it(tmp_path, data):
    model = small_cnn()
    cb = _callback(tmp_path, data)
    model.fit(*data, epochs=2, batch_size=20, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == TAGS
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag

    # The fixed subset: 30 of the 40 images, balanced over classes.
    x_sub, y_sub = data[0][:40][cb.indices], data[1][:40][cb.indices]
    assert len(cb.indices) == 30 and np.array_equal(y_sub, cb.labels)
    feats, probs = extract_features(model, x_sub, return_outputs=True)  # final weights
    preds = np.argmax(probs, axis=1)

    knn = knn_accuracy(feats, y_sub)
    assert run["embedding/knn_accuracy"][-1].value == pytest.approx(knn, abs=1e-6)
    for method in ("pca", "tsne"):
        payload = run[f"json/embedding/{method}"][-1].value
        assert payload["method"] == method and payload["layer"] == "feat"
        assert payload["labels"] == y_sub.tolist() and payload["predictions"] == preds.tolist()
        assert payload["class_names"] == NAMES and payload["indices"] == cb.indices.tolist()
        assert payload["n_features"] == 8
        points = np.asarray(payload["points"], np.float32)
        assert points.shape == (30, 2)
        trust = trustworthiness(feats, points)
        assert payload["scores"]["trustworthiness"] == pytest.approx(trust, abs=1e-3)
        assert run[f"embedding/{method}/trustworthiness"][-1].value == pytest.approx(
            trust, abs=1e-3
        )
        assert payload["scores"]["knn_accuracy"] == pytest.approx(knn)
        assert payload["projector"] == {"tensor_name": "feat_epoch_002"}
        assert [r.value["aligned"] for r in run[f"json/embedding/{method}"]] == [False, True, True]
        scatter = run[f"embedding/{method}"][-1].value[0]
        assert scatter.shape == (560, 620, 3)
    # PCA points are the principal components of the final features (signs aligned).
    pca = np.asarray(run["json/embedding/pca"][-1].value["points"])
    np.testing.assert_allclose(
        np.abs(pca), np.abs(project(feats, "pca").points), rtol=1e-3, atol=1e-4
    )
    assert run["json/embedding/pca"][-1].value["explained_variance_ratio"][0] > 0

    # Sprite: 30 thumbnails 16x16, 6 per row, square; the payload's geometry matches it.
    sprite = run["embedding/sprite"][-1].value[0][..., ::-1]  # BGR -> RGB
    info = run["json/embedding/tsne"][-1].value["sprite"]
    assert info == {"tag": "embedding/sprite", "single_image_dim": [16, 16], "per_row": 6}
    assert sprite.shape == (96, 96, 3)
    np.testing.assert_array_equal(
        sprite[16:32, 32:48], (np.clip(x_sub[8], 0, 1) * 255 + 0.5).astype(np.uint8)
    )
    # t-SNE grid: 6x5 cells of 16 px with 1 px padding.
    assert run["embedding/tsne_grid"][-1].value[0].shape == (5 * 17 + 1, 6 * 17 + 1, 3)

    client = projector_client(tmp_path)
    assert get(client, "runs").get_json() == ["cnnvis"]
    info = get(client, "info", run="cnnvis").get_json()
    assert [e["tensorName"] for e in info["embeddings"]] == [
        f"feat_epoch_{s:03d}" for s in (0, 1, 2)
    ]
    np.testing.assert_allclose(
        served_tensor(client, "cnnvis", "feat_epoch_002", (30, 8)), feats, rtol=1e-5, atol=1e-6
    )
    rows = (
        get(client, "metadata", run="cnnvis", name="feat_epoch_002")
        .get_data(as_text=True)
        .strip()
        .split("\n")
    )
    assert rows[0] == "index\tlabel\tprediction\tcorrect"
    expected = [
        f"{i}\t{NAMES[a]}\t{NAMES[b]}\t{'yes' if a == b else 'no'}"
        for i, a, b in zip(cb.indices, y_sub, preds)
    ]
    assert rows[1:] == expected
    served = decode_png(get(client, "sprite_image", run="cnnvis", name="feat_epoch_000").get_data())
    np.testing.assert_array_equal(served, sprite)


def test_two_fits_in_a_row_continue_the_layout(tmp_path, data):
    model = small_cnn()
    cb = _callback(tmp_path, data, methods=("tsne",), tsne_grid=False)
    model.fit(*data, epochs=1, verbose=0, callbacks=[cb])
    model.fit(*data, initial_epoch=1, epochs=2, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["json/embedding/tsne"]] == [0, 1, 1, 2]
    # The second fit starts t-SNE from the first fit's last layout (aligned onto it).
    assert [r.value["aligned"] for r in run["json/embedding/tsne"]] == [False, True, True, True]
    names = [
        e["tensorName"]
        for e in get(projector_client(tmp_path), "info", run="cnnvis").get_json()["embeddings"]
    ]
    assert names == ["feat_epoch_000", "feat_epoch_001", "feat_epoch_002"]


def test_knn_accuracy_rises_on_a_short_demo_run(tmp_path):
    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, _ = datasets.shapes(700, size=32, seed=0)
    model = build_demo_model((32, 32, 3), len(datasets.SHAPE_CLASSES), seed=0)
    cb = EmbeddingCallback(
        str(tmp_path),
        (images[:200], labels[:200]),
        methods=("pca",),
        projector=False,
        class_names=datasets.SHAPE_CLASSES,
        on_error="raise",
    )
    train_demo_model(model, images[200:], labels[200:], epochs=3, callbacks=[cb])
    knn = [r.value for r in read_run(str(tmp_path / "cnnvis"))["embedding/knn_accuracy"]]
    print(
        "\nkNN accuracy per logged epoch (demo CNN, shapes 32 px, 500 train images):",
        np.round(knn, 3),
    )
    assert len(knn) == 4 and knn[-1] > knn[0] + 0.05


def test_spatial_layer_is_pooled_with_a_warning(tmp_path, data):
    model = small_cnn()
    cb = _callback(tmp_path, data, layer="conv", methods=("pca",))
    with pytest.warns(
        UserWarning,
        match=r"Layer 'conv' outputs spatial maps of shape \(14, 14, 6\); keras-cnnvis global-average-pools",
    ):
        model.fit(*data, epochs=1, verbose=0, callbacks=[cb])
    payload = read_run(str(tmp_path / "cnnvis"))["json/embedding/pca"][-1].value
    assert payload["layer"] == "conv" and payload["n_features"] == 6


def test_fewer_images_than_classes_warns_and_training_continues(tmp_path, data):
    model = small_cnn(n_classes=5)
    x = data[0][:4]
    y = np.array([0, 1, 2, 0])
    cb = EmbeddingCallback(
        str(tmp_path),
        (x, y),
        methods=("pca", "tsne"),
        tsne_iter=250,
        class_names=["a", "b", "c", "d", "e"],
        on_error="raise",
    )
    with pytest.warns(
        UserWarning,
        match=r"only 4 images for 5 classes; classes without any image in the embedding: \['d', 'e'\]",
    ):
        history = model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    assert len(history.history["loss"]) == 2
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["json/embedding/tsne"]] == [0, 1, 2]
    assert len(run["json/embedding/tsne"][-1].value["points"]) == 4


class _PoisonAt(keras.callbacks.Callback):
    """Sets the feature layer's weights to huge finite values at the end of one epoch: the
    weights stay finite (so the base class's NaN-weight guard does not step in) but the
    linear layer's features overflow to infinity, and training makes every weight NaN from
    then on."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            layer = self.model.get_layer("feat")
            layer.set_weights([np.full_like(w, 3e38) for w in layer.get_weights()])


def test_nan_features_skip_the_step_and_training_continues(tmp_path, data):
    model = small_cnn(feat_activation=None)
    cb = _callback(tmp_path, data, methods=("pca",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(*data, epochs=3, verbose=0, callbacks=[_PoisonAt(1), cb])
    ours = [str(w.message) for w in caught if "images are NaN or infinite" in str(w.message)]
    assert ours and "the features of 30 of 30 images are NaN or infinite at step 2" in ours[0]
    assert all("training continues" in m for m in ours)
    assert len(history.history["loss"]) == 3
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["json/embedding/pca"]] == [0, 1]
    names = [
        e["tensorName"]
        for e in get(projector_client(tmp_path), "info", run="cnnvis").get_json()["embeddings"]
    ]
    assert names == ["feat_epoch_000", "feat_epoch_001"]


def _no_dense():
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(3, 3, name="conv")(i)
    model = keras.Model(i, keras.layers.GlobalAveragePooling2D()(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    "make_model, kwargs, message",
    [
        (small_cnn, {"layer": "nope"}, r"No layer named 'nope'"),
        (_no_dense, {}, r"has no Dense layer.*Pass layer="),
        (small_cnn, {"class_names": ["a", "b"]}, r"Label 2 has no name: class_names has 2 entries"),
    ],
)
def test_misconfiguration_raises_before_the_first_epoch(
    tmp_path, data, make_model, kwargs, message
):
    model = make_model()
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        model.fit(
            *data, epochs=2, verbose=0, callbacks=[epochs, _callback(tmp_path, data, **kwargs)]
        )
    assert epochs.begun == []
    assert not (tmp_path / "cnnvis").exists()


def test_images_the_model_cannot_take(tmp_path, data):
    model = small_cnn()
    cb = EmbeddingCallback(str(tmp_path), (np.zeros((8, 12, 12, 3)), np.zeros(8)), on_error="raise")
    with pytest.raises(
        ValueError, match=r"The embedding images have shape \(8, 12, 12, 3\); model '\w+' expects"
    ):
        model.fit(*data, epochs=1, verbose=0, callbacks=[cb])


def test_constructor_validation(data):
    x, y = data
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        EmbeddingCallback("x", (x, y), methods=("umap",))
    with pytest.raises(ValueError, match="spatial must be one of"):
        EmbeddingCallback("x", (x, y), spatial="mean")
    with pytest.raises(ValueError, match=r"data must be \(images, labels\)"):
        EmbeddingCallback("x", x)
    with pytest.raises(ValueError, match="at least 4 images"):
        EmbeddingCallback("x", (x[:3], y[:3]))
    with pytest.raises(
        ValueError,
        match=r"Labels must be one class index \(or one-hot row\) per example \(60\); got shape \(59,\)",
    ):
        EmbeddingCallback("x", (x, y[:59]))
    bad = x.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        EmbeddingCallback("x", (bad, y), n_images=60)
    with pytest.raises(ValueError, match="every_n_epochs"):
        EmbeddingCallback("x", (x, y), every_n_epochs=-1)
    one_hot = EmbeddingCallback("x", (x, np.eye(3)[y]), n_images=60)
    assert np.array_equal(one_hot.labels, y)


def test_balanced_subset():
    labels = np.array([0] * 100 + [1] * 20 + [2] * 5)
    idx = balanced_subset(labels, 30, seed=0)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.tolist() == [13, 12, 5] and len(np.unique(idx)) == 30
    assert np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, balanced_subset(labels, 30, seed=0))
    assert not np.array_equal(idx, balanced_subset(labels, 30, seed=1))
    assert balanced_subset(labels[:10], 30).tolist() == list(range(10))


def test_every_n_epochs_and_the_last_epoch(tmp_path, data):
    model = small_cnn()
    cb = _callback(tmp_path, data, methods=("pca",), every_n_epochs=2, projector=False)
    model.fit(*data, epochs=3, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["json/embedding/pca"]] == [0, 2, 3]
    assert not (tmp_path / "cnnvis" / "projector_config.pbtxt").exists()


def test_every_n_epochs_zero_writes_nothing(tmp_path, data):
    model = small_cnn()
    model.fit(*data, epochs=1, verbose=0, callbacks=[_callback(tmp_path, data, every_n_epochs=0)])
    assert os.listdir(tmp_path) == []
