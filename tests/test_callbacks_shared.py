"""The forward pass over the validation images shared by the confusion matrix, the embedding and
the nearest neighbours (keras_cnnvis/callbacks/shared.py): one pass per record set, and the
records it gives equal the records of the monitors running their own passes."""

from __future__ import annotations

import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis.callbacks import (
    CNNVisCallback,
    ConfusionMatrixCallback,
    EmbeddingCallback,
    NearestNeighborsCallback,
)
from keras_cnnvis.callbacks.shared import SharedPass
from keras_cnnvis.features.embeddings import LayerFeatures
from robustness_models import CLASSES, shapes_data, tiny_cnn


@pytest.fixture(scope="module")
def data():
    return shapes_data()


def test_shared_pass_runs_once_until_invalidated_and_serves_rows(data):
    _, (x_val, _, _) = data
    model = tiny_cnn()
    shared = SharedPass(x_val, batch_size=7)  # several batches and a short last one
    shared.bind(model)
    raw, outputs = shared.features(rows=np.array([3, 0, 5]))
    expected_raw, expected_out = LayerFeatures(model)(x_val, outputs=True)
    np.testing.assert_allclose(raw, expected_raw[[3, 0, 5]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shared.outputs(), expected_out, rtol=1e-5, atol=1e-6)
    assert shared.passes == 1  # the second request read the first pass
    model.layers[1].kernel.assign(model.layers[1].kernel * 2.0)  # "training"
    np.testing.assert_array_equal(shared.outputs(), expected_out)  # still the old pass
    shared.invalidate()
    assert not np.allclose(shared.outputs(), expected_out)
    assert shared.passes == 2


def test_a_model_without_dense_layer_shares_outputs_only(data):
    import keras

    _, (x_val, _, _) = data
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(5, 3, name="conv")(inputs)
    outputs = keras.layers.Softmax()(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    shared = SharedPass(x_val)
    shared.bind(model)
    assert not shared.has_features
    np.testing.assert_allclose(shared.outputs(), model.predict(x_val, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="no Dense layer"):
        shared.features()


def test_one_pass_per_record_set_gives_the_records_of_separate_passes(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    cnnvis = CNNVisCallback(
        str(tmp_path / "shared"),
        validation_data=(x_val, y_val),
        class_names=CLASSES,
        include=("confusion", "embedding", "neighbors"),
        options={"embedding": {"methods": ("pca",), "projector": False}},
        expensive_every=1,
        budget=None,
    )
    half = len(x_val) // 2
    own = str(tmp_path / "own")
    separate = [
        ConfusionMatrixCallback(own, (x_val, y_val), class_names=CLASSES),
        EmbeddingCallback(
            own, (x_val, y_val), class_names=CLASSES, methods=("pca",), projector=False
        ),
        NearestNeighborsCallback(own, (x_val[half:], y_val[half:]), (x_val[:half], y_val[:half])),
    ]
    tiny_cnn().fit(x, y, epochs=2, verbose=0, callbacks=[cnnvis, *separate])
    assert cnnvis.names == ["confusion", "embedding", "neighbors"]
    assert all(m.shared is cnnvis._shared for m in cnnvis.monitors)
    assert cnnvis._shared.passes == 3  # before training and after each epoch: 3 record sets
    a, b = read_run(str(tmp_path / "shared" / "cnnvis")), read_run(own + "/cnnvis")
    assert [r.step for r in a["json/confusion/matrix"]] == [0, 1, 2]
    for tag in ("json/embedding/pca", "neighbors/feature", "neighbors/knn_accuracy_feature"):
        # Expensive monitors do not record the untrained model; the separate ones do.
        assert [r.step for r in a[tag]] == [1, 2] and [r.step for r in b[tag]] == [0, 1, 2]
        b[tag] = b[tag][1:]
    assert [r.step for r in b["json/confusion/matrix"]] == [0, 1, 2]
    for ra, rb in zip(a["json/confusion/matrix"], b["json/confusion/matrix"]):
        assert ra.value["matrix"] == rb.value["matrix"]
    for ra, rb in zip(a["json/embedding/pca"], b["json/embedding/pca"]):
        assert ra.value["predictions"] == rb.value["predictions"]
        np.testing.assert_allclose(ra.value["points"], rb.value["points"], atol=1e-4)
    for ra, rb in zip(a["neighbors/knn_accuracy_feature"], b["neighbors/knn_accuracy_feature"]):
        assert ra.value == pytest.approx(rb.value)
    for ra, rb in zip(a["neighbors/feature"], b["neighbors/feature"]):
        np.testing.assert_array_equal(ra.value[0], rb.value[0])  # the same neighbours drawn


def test_forward_function_is_one_compiled_function_per_model(data):
    import gc
    import weakref

    from keras_cnnvis.model.compiled import forward_function

    _, (x_val, _, _) = data
    model, other = tiny_cnn(), tiny_cnn(seed=1)
    fn = forward_function(model)
    assert forward_function(model) is fn and forward_function(other) is not fn
    np.testing.assert_allclose(fn(x_val[:5]), model(x_val[:5], training=False), atol=1e-6)
    fn(x_val)  # another batch size: the same trace
    assert fn.function.experimental_get_tracing_count() == 1
    ref = weakref.ref(model)
    del model, fn
    gc.collect()
    assert ref() is None  # the cache does not keep the model alive


def test_shared_pass_batches_by_the_models_byte_budget(data):
    from keras_cnnvis.model.compiled import batch_size_for

    _, (x_val, _, _) = data
    model = tiny_cnn()
    shared = SharedPass(x_val)
    shared.bind(model)
    shared.outputs()
    assert shared._source._both.batch_for(x_val.shape[1:]) == batch_size_for(model)
