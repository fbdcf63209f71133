"""CNNVisCallback in real fits: which records every monitor writes at which step, automatic
layers and probes, include/exclude/options, data without labels or as tf.data, and refits.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from eventfiles import event_files, read_run
from keras_cnnvis import filter_grid, image
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.cnnvis import MONITORS, auto_layers, pick_probes
from robustness_models import CLASSES, CONVS, LIGHT, shapes_data, tiny_cnn

HEALTH_SCORES = ("noise_like_fraction", "dead_fraction", "saturated_fraction", "mean_drift")


@pytest.fixture(scope="module")
def data():
    return shapes_data()


def steps(run, tag):
    return [r.step for r in run[tag]]


def tags_with_prefix(run, *prefixes):
    return {t for t in run if t.startswith(prefixes)}


def test_default_run_writes_every_monitor_on_its_schedule(tmp_path, data):
    (x, y), (x_val, y_val, m_val) = data
    model = tiny_cnn()
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        masks=m_val,
        class_names=CLASSES,
        n_probes=5,
        expensive_every=2,
        options=LIGHT,
        on_error="raise",
        budget=None,
    )
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert sorted(type(m).__name__ for m in cb.monitors) == sorted(
        [
            "FilterGridCallback",
            "FilterHealthCallback",
            "ActivationMapsCallback",
            "GradCAMCallback",
            "ConfusionMatrixCallback",
            "SaliencyCallback",
            "OcclusionCallback",
            "MaxActivatingPatchesCallback",
            "EmbeddingCallback",
            "NearestNeighborsCallback",
            "ClassVisualizationCallback",
            "NetworkCallback",
            "RobustnessCallback",
        ]
    )
    run = read_run(str(tmp_path / "cnnvis"))
    assert len(event_files(tmp_path / "cnnvis")) == 1
    # Expensive: every 2nd epoch and the end, never the untrained model; Grad-CAM's
    # faithfulness scores (a cheap monitor's) on the expensive schedule, as expensive.
    cheap, expensive = [0, 1, 2, 3], [2, 3]
    faithful = expensive

    expected = {}
    for layer in CONVS:  # auto_layers: both convolutions
        for tag in ("filters", "json/filters", "activations", "json/activations"):
            expected[f"{tag}/{layer}"] = cheap
        expected[f"health/{layer}"] = expected[f"json/health/{layer}"] = cheap
        for tag in ("patches", "json/patches"):
            expected[f"{tag}/{layer}"] = expensive
    for method, when in [
        ("grad_cam", cheap),
        ("layer_cam", cheap),
        ("saliency", expensive),
        ("guided_backprop", expensive),
        ("integrated_gradients", expensive),
        ("occlusion", expensive),
    ]:
        expected[f"attribution/{method}"] = expected[f"json/attribution/{method}"] = when
        for score in ("energy_in_mask", "pointing_game"):
            expected[f"localization/{method}/{score}"] = when  # masks were given
    for method in ("grad_cam", "layer_cam", "random"):  # faithfulness: on for grad_cam,
        for score in ("deletion_auc", "insertion_auc", "mu_fidelity"):  # on the expensive
            expected[f"faithfulness/{method}/{score}"] = faithful  # schedule
    expected["probes/images"] = cheap
    expected["confusion/matrix"] = expected["json/confusion/matrix"] = cheap
    for name in CLASSES:
        if np.any(y_val == CLASSES.index(name)):
            expected[f"confusion/accuracy/{name}"] = cheap
    for tag in (
        "embedding/pca",
        "json/embedding/pca",
        "embedding/sprite",
        "embedding/knn_accuracy",
        "embedding/pca/trustworthiness",
        "neighbors/feature",
        "neighbors/pixel",
        "neighbors/knn_accuracy_feature",
        "neighbors/knn_accuracy_pixel",
        "synthesis/classes",
        "json/synthesis/classes",
    ):
        expected[tag] = expensive
    health_scalars = {
        t: steps(run, t) for t in run if t.count("/") == 2 and t.startswith("health/")
    }
    network = {t for t in run if t.startswith(("network/", "json/network/"))}
    robustness = {t for t in run if t.startswith(("robustness/", "json/robustness/"))}
    assert {"network/atlas", "json/network/overview", "json/network/layer/conv_a"} <= network
    assert all(steps(run, t) == cheap for t in network)
    assert {"robustness/clean_accuracy", "json/robustness/heatmap"} <= robustness
    # Robustness every 2 x expensive_every epochs (4 here) and at the end.
    assert all(steps(run, t) == [3] for t in robustness)
    others = set(run) - set(health_scalars) - network - robustness
    assert {t: steps(run, t) for t in others} == expected
    for layer in CONVS:
        for score in HEALTH_SCORES:
            assert health_scalars.pop(f"health/{layer}/{score}") == cheap
        # The update ratio needs a previous record: from step 1 on.
        assert health_scalars.pop(f"health/{layer}/median_update_ratio") == [1, 2, 3]
    optional = {"spectral_alpha", "spike_ratio"}  # only when measurable on so few filters
    assert {t.rsplit("/", 1)[1] for t in health_scalars} <= optional

    # Probes: the first validation image of each class (one per class, 5 classes).
    first_of_class = sorted(int(np.flatnonzero(y_val == c)[0]) for c in range(5))
    np.testing.assert_array_equal(cb.probe, x_val[first_of_class])
    grad_cam = run["json/attribution/grad_cam"][-1].value
    assert [p["label"] for p in grad_cam["probes"]] == y_val[first_of_class].tolist()
    shown = run["probes/images"][-1].value  # 16 px probes enlarged x4, BGR from OpenCV
    assert len(shown) == 5
    for img, x_probe in zip(shown, x_val[first_of_class]):
        np.testing.assert_array_equal(img[::4, ::4, ::-1], image.to_uint8(x_probe))
    # The records show the trained model: last filter grid and confusion matrix.
    last_grid = run["filters/conv_a"][-1].value[0]
    np.testing.assert_array_equal(
        last_grid[..., ::-1], image.to_uint8(filter_grid(model, "conv_a"))
    )
    predicted = np.argmax(model.predict(x_val, verbose=0), axis=1)
    matrix = np.zeros((5, 5), int)
    np.add.at(matrix, (y_val, predicted), 1)
    confusion = run["json/confusion/matrix"][-1].value
    assert confusion["matrix"] == matrix.tolist()
    assert confusion["class_names"] == CLASSES
    assert len(run["json/embedding/pca"][-1].value["points"]) == len(x_val)
    assert os.path.isfile(tmp_path / "cnnvis" / "projector_config.pbtxt")


def test_pick_probes_takes_classes_in_turn():
    labels = np.array([2, 2, 0, 1, 0, 2, 1])
    # Round 1: first of class 0 (2), 1 (3), 2 (0); round 2: second of class 0 (4).
    np.testing.assert_array_equal(pick_probes(labels, 7, 4), [0, 2, 3, 4])
    np.testing.assert_array_equal(pick_probes(labels, 7, 100), np.arange(7))
    np.testing.assert_array_equal(pick_probes(None, 7, 3), [0, 1, 2])
    np.testing.assert_array_equal(pick_probes(np.array([1, 1, 1]), 3, 2), [0, 1])


def six_conv_model(nested: bool):
    convs = [keras.layers.Conv2D(2, 3, padding="same", name=f"c{i}") for i in range(6)]
    if nested:
        base = keras.Sequential([keras.Input((8, 8, 1))] + convs, name="base")
        model = keras.Sequential(
            [keras.Input((8, 8, 1)), base, keras.layers.Flatten(), keras.layers.Dense(2)]
        )
    else:
        model = keras.Sequential(
            [keras.Input((8, 8, 1))] + convs + [keras.layers.Flatten(), keras.layers.Dense(2)]
        )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("nested", [False, True])
def test_auto_layers_spread_four_convolutions_from_first_to_last(tmp_path, nested):
    model = six_conv_model(nested)
    prefix = "base/" if nested else ""
    # linspace(0, 5, 4) = 0, 1.67, 3.33, 5 -> convolutions 0, 2, 3, 5.
    expected = [f"{prefix}c{i}" for i in (0, 2, 3, 5)]
    assert auto_layers(model) == expected
    assert auto_layers(model, n=8) == [f"{prefix}c{i}" for i in range(6)]
    cb = CNNVisCallback(str(tmp_path), include=("filters",), on_error="raise", budget=None)
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    model.fit(x, np.arange(8) % 2, epochs=1, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {f"filters/{p}" for p in expected} | {f"json/filters/{p}" for p in expected}


def test_include_exclude_and_options(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "confusion", "patches"),
        exclude=("patches",),
        options={"filters": {"every_n_epochs": 2, "layers": ["conv_b"]}},
        on_error="raise",
        budget=None,
    )
    assert cb.names == ["filters", "confusion"]
    tiny_cnn().fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert tags_with_prefix(run, "filters", "json/filters") == {
        "filters/conv_b",
        "json/filters/conv_b",
    }
    assert steps(run, "filters/conv_b") == [0, 2]  # options override the schedule
    assert steps(run, "confusion/matrix") == [0, 1, 2, 3]
    assert tags_with_prefix(run, "filters", "json/filters", "confusion", "json/confusion") == set(
        run
    )
    everything_but = CNNVisCallback(
        str(tmp_path), validation_data=(x_val, y_val), exclude=("classes", "embedding"), budget=None
    )
    assert everything_but.names == [m for m in MONITORS if m not in ("classes", "embedding")]


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"include": ("filters", "gradcam")}, "['gradcam']"),
        ({"exclude": ("saliencey",)}, "['saliencey']"),
        ({"options": {"embeddings": {"methods": ("pca",)}}}, "['embeddings']"),
    ],
)
def test_unknown_monitor_names_are_refused_at_construction(kwargs, bad):
    with pytest.raises(ValueError) as error:
        CNNVisCallback("unused", **kwargs, budget=None)
    assert str(error.value) == f"Unknown monitors {bad}; choose from {list(MONITORS)}."


def test_expensive_every_must_be_positive():
    with pytest.raises(ValueError, match=r"expensive_every must be an integer >= 1; got 0"):
        CNNVisCallback("unused", expensive_every=0, budget=None)


def test_without_validation_data_only_weight_monitors_run(tmp_path, data):
    (x, y), _ = data
    cb = CNNVisCallback(str(tmp_path), options=LIGHT, on_error="raise", budget=None)
    assert cb.names == ["filters", "health", "classes"]
    model = tiny_cnn()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert {t.split("/")[0] if not t.startswith("json/") else t.split("/")[1] for t in run} == {
        "filters",
        "health",
        "synthesis",
    }
    assert {t for t in run if "dead_fraction" in t} == set()  # no probe images: not scored
    assert steps(run, "synthesis/classes") == [1]  # expensive: the end, not the start
    assert steps(run, "filters/conv_a") == [0, 1]
    # Probe images alone: the per-probe monitors run, the data-set ones (patches,
    # embedding, neighbours, confusion) do not.
    assert CNNVisCallback(str(tmp_path), probe=x[:3], budget=None).names == [
        "filters",
        "health",
        "activations",
        "grad_cam",
        "network",
        "saliency",
        "occlusion",
        "classes",
    ]


def test_tf_data_validation_data_gives_the_same_arrays_and_records(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    from_numpy = CNNVisCallback(
        str(tmp_path / "np"), validation_data=(x_val, y_val), n_probes=5, budget=None
    )
    batched = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(7)
    single = tf.data.Dataset.from_tensor_slices((x_val, y_val))  # not batched
    one_hot = (x_val, np.eye(5, dtype=np.float32)[y_val])
    for other in (batched, single, one_hot):
        cb = CNNVisCallback(str(tmp_path / "ds"), validation_data=other, n_probes=5, budget=None)
        np.testing.assert_array_equal(cb.x_val, from_numpy.x_val)
        np.testing.assert_array_equal(cb.y_val, y_val)
        np.testing.assert_array_equal(cb.probe, from_numpy.probe)
        np.testing.assert_array_equal(cb.probe_labels, from_numpy.probe_labels)
    capped = CNNVisCallback(
        str(tmp_path / "ds"), validation_data=batched, max_examples=10, budget=None
    )
    np.testing.assert_array_equal(capped.x_val, x_val[:10])

    model = tiny_cnn()
    cb = CNNVisCallback(
        str(tmp_path / "ds"),
        validation_data=batched,
        include=("confusion",),
        on_error="raise",
        budget=None,
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    record = read_run(str(tmp_path / "ds" / "cnnvis"))["json/confusion/matrix"][-1].value
    predicted = np.argmax(model.predict(x_val, verbose=0), axis=1)
    assert record["n_examples"] == len(x_val)
    assert record["accuracy"] == pytest.approx(np.mean(predicted == y_val))


def test_two_fits_in_a_row_continue_the_steps(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    model = tiny_cnn()
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "patches"),
        expensive_every=2,
        on_error="raise",
        budget=None,
    )
    model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    monitors = list(cb.monitors)
    model.fit(x, y, initial_epoch=3, epochs=5, verbose=0, callbacks=[cb])
    assert cb.monitors == monitors  # built once, reused
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "filters/conv_a") == [0, 1, 2, 3, 3, 4, 5]
    # Patches: fit 1 at 2 and its end 3; fit 2 at epoch 4 and its end 5.
    assert steps(run, "patches/conv_b") == [2, 3, 4, 5]
    # The end of fit 1 and the start of fit 2 show the same weights.
    grids = run["filters/conv_b"]
    np.testing.assert_array_equal(grids[3].value[0], grids[4].value[0])
    assert not np.array_equal(grids[0].value[0], grids[3].value[0])


def test_initial_epoch_logs_at_the_right_steps(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "patches"),
        expensive_every=3,
        on_error="raise",
        budget=None,
    )
    tiny_cnn().fit(x, y, initial_epoch=2, epochs=7, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "filters/conv_a") == [2, 3, 4, 5, 6, 7]
    # Expensive: after epochs 3 and 6 (multiples of 3) and at the end (not at the start).
    assert steps(run, "patches/conv_a") == [3, 6, 7]


def test_segmentation_target_scores_the_predicted_foreground_class():
    from keras_cnnvis.callbacks.plan import PredictedMask
    from keras_cnnvis.model.head import Head

    unit = np.array([[[0.4], [0.6]], [[0.9], [0.2]]], np.float32)[None]  # (1, 2, 2, 1)
    sigmoid = PredictedMask(Head("segmentation", 2, "sigmoid", 0, (2, 2, 1)))
    logit = PredictedMask(Head("segmentation", 2, "linear", 0, (2, 2, 1)))
    np.testing.assert_allclose(sigmoid(unit), [0.6 + 0.9], rtol=1e-6)  # p > 0.5
    np.testing.assert_allclose(logit(unit), [0.4 + 0.6 + 0.9 + 0.2], rtol=1e-6)  # z > 0
    scores = np.array(
        [
            [[[0.8, 0.1, 0.1], [0.7, 0.2, 0.1]], [[0.6, 0.1, 0.3], [0.1, 0.2, 0.7]]],
            [[[0.9, 0.05, 0.05]] * 2] * 2,  # background only
        ],
        np.float32,
    )
    classes = PredictedMask(Head("segmentation", 3, "softmax", 0, (2, 2, 3)))
    # Image 0: class 2 on one pixel beats the background; image 1: the background itself.
    np.testing.assert_allclose(classes(scores), [0.7, 4 * 0.9], rtol=1e-6)
