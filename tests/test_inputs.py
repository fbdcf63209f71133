"""keras_cnnvis.inputs: the one rule for images, labels, predicted classes and balanced picks,
and the proof that every monitor uses it (a one-sigmoid and a one-logit binary head get the
same predicted classes on the confusion matrix, the embedding and the attribution frames)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from eventfiles import read_run
from keras_cnnvis import inputs
from keras_cnnvis.callbacks import (
    ConfusionMatrixCallback,
    EmbeddingCallback,
    GradCAMCallback,
    NearestNeighborsCallback,
)


def image_model(shape=(6, 5, 3)):
    i = keras.Input(shape)
    return keras.Model(i, keras.layers.GlobalAveragePooling2D()(i), name="m")


# -- images ----------------------------------------------------------------------------------


def test_check_images_converts_integers_and_keeps_values():
    x = np.arange(2 * 6 * 5 * 3, dtype=np.uint8).reshape(2, 6, 5, 3)
    out = inputs.check_images(x, image_model())
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, x.astype(np.float32))  # never rescaled


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (None, {}, r"^No probe images given; pass a numpy array \(N, height, width, channels\)"),
        (
            [np.zeros((1, 6, 5, 3))] * 2,
            {},
            r"^The probe images are 2 arrays \(inputs of a multi-input model\?\)",
        ),
        (np.full((1, 6, 5, 3), "a"), {}, r"^The probe images have dtype <U1; pass real numbers"),
        (np.ones((1, 6, 5, 3), bool), {}, r"^The probe images have dtype bool"),
        (
            np.zeros((6, 5, 3)),
            {},
            r"^The probe images have shape \(6, 5, 3\); expected a batch of images "
            r"\(N, 6, 5, 3\)\. For one image pass image\[None\]\.$",
        ),
        (np.zeros((0, 6, 5, 3)), {}, r"^The probe images batch is empty"),
        (
            np.zeros((2, 5, 6, 3)),
            {},
            r"^The probe images have shape \(2, 5, 6, 3\); model 'm' expects \(N, 6, 5, 3\)\. "
            r"Resize the images",
        ),
        (np.full((1, 6, 5, 3), np.inf), {}, r"^The probe images contain NaN or inf values\.$"),
    ],
)
def test_check_images_messages(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inputs.check_images(images, image_model(), "probe images", **kwargs)


def test_check_images_single_image_and_free_sizes():
    one = inputs.check_images(np.zeros((6, 5, 3)), image_model(), single=True)
    assert one.shape == (1, 6, 5, 3)
    free = image_model((None, None, 3))
    assert inputs.check_images(np.zeros((2, 9, 7, 3)), free).shape == (2, 9, 7, 3)
    with pytest.raises(ValueError, match=r"expects \(N, any, any, 3\)"):
        inputs.check_images(np.zeros((2, 9, 7, 1)), free)
    nan = np.full((1, 6, 5, 3), np.nan)
    assert np.isnan(inputs.check_images(nan, None, finite=False)).all()


def test_image_batches_from_every_source():
    x = np.arange(10 * 4 * 4, dtype=np.float32).reshape(10, 4, 4, 1)
    y = np.arange(10)

    def generator():
        for i in range(0, 10, 3):
            yield x[i : i + 3], y[i : i + 3]

    sources = {
        "array": x,
        "pair": (x, y),
        "singles": iter(x),
        "generator": generator(),
        "dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(4),
        "unbatched dataset": tf.data.Dataset.from_tensor_slices(x),
    }
    for name, source in sources.items():
        batches = list(inputs.image_batches(source, batch_size=4))
        np.testing.assert_array_equal(np.concatenate(batches), x, err_msg=name)
    assert [len(b) for b in inputs.image_batches(iter(x), batch_size=4)] == [4, 4, 2]
    assert inputs.data_length((x, y)) == 10 and inputs.data_length(generator()) is None
    with pytest.raises(ValueError, match=r"\(N, height, width, channels\) array; got shape"):
        list(inputs.image_batches(x[0]))
    with pytest.raises(ValueError, match=r"got shape \(4, 4\)"):
        list(inputs.image_batches([np.ones((4, 4))]))


def test_labelled_arrays_reads_tuples_and_datasets_up_to_a_limit():
    x = np.random.default_rng(0).random((30, 4, 4, 3)).astype(np.float32)
    y = np.arange(30) % 3
    xs, ys = inputs.labelled_arrays((x, y), 20)
    np.testing.assert_array_equal(xs, x[:20]) and np.testing.assert_array_equal(ys, y[:20])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    xd, yd = inputs.labelled_arrays(ds, 20)
    np.testing.assert_array_equal(xd, x[:20])
    np.testing.assert_array_equal(yd, y[:20])
    x_only, none = inputs.labelled_arrays(tf.data.Dataset.from_tensor_slices(x), 5)
    assert x_only.shape == (5, 4, 4, 3) and none is None
    with pytest.raises(ValueError, match="got generator"):
        inputs.labelled_arrays((b for b in [x]), 5)


# -- labels and classes ----------------------------------------------------------------------


def test_class_labels_from_indices_columns_and_one_hot():
    np.testing.assert_array_equal(inputs.class_labels([2, 0, 1]), [2, 0, 1])
    np.testing.assert_array_equal(inputs.class_labels([[2], [0]]), [2, 0])
    np.testing.assert_array_equal(inputs.class_labels(np.eye(3)[[2, 0, 1]]), [2, 0, 1])
    np.testing.assert_array_equal(inputs.class_labels(np.array([1.0, 0.0])), [1, 0])
    with pytest.raises(ValueError, match=r"per example \(4\); got shape \(3,\)"):
        inputs.class_labels([0, 1, 2], 4)
    for bad in ([0.5, 1.0], [-1, 0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="integer class indices >= 0"):
            inputs.class_labels(bad)


def test_predicted_classes_for_every_head():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert inputs.predicted_classes(probs).tolist() == [1, 0]
    assert inputs.predicted_classes(np.log(probs)).tolist() == [1, 0]  # logits: same argmax
    z = np.array([[-2.0], [0.3], [0.0], [4.0]])
    p = 1 / (1 + np.exp(-z))
    logit = inputs.predicted_classes(z, "linear")
    sigmoid = inputs.predicted_classes(p, "sigmoid")
    assert logit.tolist() == sigmoid.tolist() == [0, 1, 0, 1]
    # A logit inside [0, 1] is still a logit when the activation is known...
    assert inputs.predicted_classes(np.array([0.2, 0.4]), "linear").tolist() == [1, 1]
    # ...and read as a probability when it is not.
    assert inputs.predicted_classes(np.array([0.2, 0.4])).tolist() == [0, 0]
    assert inputs.n_classes_of(z) == 2 and inputs.n_classes_of(probs) == 3
    with pytest.raises(ValueError, match=r"outputs of shape \(2, 4, 4, 3\)"):
        inputs.predicted_classes(np.zeros((2, 4, 4, 3)))


def test_class_scores_read_one_unit_symmetrically():
    z = np.array([[-2.0], [3.0]], np.float32)
    np.testing.assert_allclose(inputs.class_scores(z, [0, 0], "linear"), [2.0, -3.0])
    np.testing.assert_allclose(inputs.class_scores(z, [1, 1], "linear"), [-2.0, 3.0])
    p = np.array([[0.2], [0.9]], np.float32)
    np.testing.assert_allclose(inputs.class_scores(p, [0, 1], "sigmoid"), [0.8, 0.9])
    probs = np.array([[0.1, 0.9], [0.6, 0.4]], np.float32)
    np.testing.assert_allclose(inputs.class_scores(probs, [1, 1]), [0.9, 0.4])


def test_balanced_indices_round_robin():
    labels = np.array([2, 2, 0, 1, 1, 0, 2, 0])
    # sorted classes 0, 1, 2; first members 2, 3, 0; then 5, 4, 1 ...
    assert inputs.balanced_indices(labels, 4, sort=False).tolist() == [2, 3, 0, 5]
    assert inputs.balanced_indices(labels, 4).tolist() == [0, 2, 3, 5]
    # classes in order of first appearance: 2, 0, 1
    assert inputs.balanced_indices(labels, 4, class_order="first_seen", sort=False).tolist() == [
        0,
        2,
        3,
        1,
    ]
    seeded = inputs.balanced_indices(labels, 6, seed=3)
    assert len(seeded) == 6 and np.bincount(labels[seeded]).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(seeded, inputs.balanced_indices(labels, 6, seed=3))
    assert inputs.balanced_indices(labels, 20).tolist() == list(range(8))
    assert inputs.balanced_indices(None, 3).tolist() == [0, 1, 2]


# -- one rule in every monitor: binary heads ---------------------------------------------------


def binary_pair():
    """The same binary classifier twice: one logit unit, and one sigmoid unit."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 12, 12, 3)).astype(np.float32)
    models = []
    for activation in (None, "sigmoid"):
        i = keras.Input((12, 12, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(i)
        h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
        h = keras.layers.Dense(6, activation="relu", name="features")(h)
        out = keras.layers.Dense(1, activation=activation, name="out")(h)
        models.append(keras.Model(i, out, name="logit" if activation is None else "sigmoid"))
    models[1].set_weights(models[0].get_weights())
    # Centre the logit so that both classes are predicted.
    z = models[0].predict(x, verbose=0)[:, 0]
    w, b = models[0].get_layer("out").get_weights()
    for m in models:
        m.get_layer("out").set_weights([w, b - np.median(z)])
    return models, x


def test_one_sigmoid_and_one_logit_unit_get_the_same_classes_everywhere(tmp_path):
    (logit, sigmoid), x = binary_pair()
    z = logit.predict(x, verbose=0)[:, 0]
    expected = (z > 0).astype(int)
    assert 5 <= expected.sum() <= 35
    y = expected.copy()
    y[:6] = 1 - y[:6]  # some mistakes, so the matrix is not diagonal
    found = {}
    for model, loss in (
        (logit, keras.losses.BinaryCrossentropy(from_logits=True)),
        (sigmoid, "bce"),
    ):
        model.compile(keras.optimizers.SGD(learning_rate=0.0), loss)
        log_dir = str(tmp_path / model.name)
        callbacks = [
            ConfusionMatrixCallback(log_dir, (x, y), on_error="raise"),
            EmbeddingCallback(log_dir, (x, y), methods=("pca",), projector=False, on_error="raise"),
            GradCAMCallback(log_dir, x[:8], layer="conv", on_error="raise"),
            NearestNeighborsCallback(log_dir, (x[20:], y[20:]), (x[:20], y[:20]), on_error="raise"),
        ]
        model.fit(x, y, epochs=1, batch_size=20, verbose=0, callbacks=callbacks)
        run = read_run(os.path.join(log_dir, "cnnvis"))
        confusion = run["json/confusion/matrix"][-1].value["matrix"]
        embedding = run["json/embedding/pca"][-1].value
        frames = run["json/attribution/grad_cam"][-1].value["probes"]
        order = np.argsort(embedding["indices"])
        found[model.name] = {
            "confusion": np.asarray(confusion),
            "embedding": np.asarray(embedding["predictions"])[order],
            "frames": [f["prediction"] for f in frames],
            "classes": [f["class"] for f in frames],
            "scores": [f["score"] for f in frames],
            "knn": run["neighbors/knn_accuracy_feature"][-1].value,
        }
    a, b = found["logit"], found["sigmoid"]
    manual = np.zeros((2, 2), int)
    np.add.at(manual, (y, expected), 1)
    np.testing.assert_array_equal(a["confusion"], manual)
    np.testing.assert_array_equal(b["confusion"], manual)
    np.testing.assert_array_equal(a["embedding"], expected)
    np.testing.assert_array_equal(b["embedding"], expected)
    assert a["frames"] == b["frames"] == expected[:8].tolist()
    assert a["classes"] == b["classes"] == expected[:8].tolist()  # the predicted class is explained
    # Scores: the logit of the explained class (z or -z), and its probability.
    np.testing.assert_allclose(a["scores"], np.abs(z[:8]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b["scores"], 1 / (1 + np.exp(-np.abs(z[:8]))), rtol=1e-4)
    assert a["knn"] == b["knn"]


def test_check_class_range_names_the_first_bad_index():
    inputs.check_class_range(np.array([0, 1, 1]), 2, "m")
    inputs.check_class_range(None, 2, "m")
    inputs.check_class_range(np.array([0, 9]), None, "m")  # no classes known: nothing to check
    with pytest.raises(ValueError, match=r"^Class index 3 is out of range for model 'm' with 3 "):
        inputs.check_class_range(np.array([[0, 3], [5, 1]]), 3, "m")  # per-pixel, first in order
