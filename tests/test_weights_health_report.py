"""filter_health on real models: untrained vs trained first layers, frozen layers, forced-dead
filters, a learning rate far too high (real training), NaN weights and bad input."""

import json

import keras
import numpy as np
import pytest

from keras_cnnvis import datasets, summary
from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.rendering.health import health_grid, report_image
from keras_cnnvis.weights.health import filter_health, snapshot_kernels


@pytest.fixture(scope="module")
def small_shapes():
    x, y, _ = datasets.shapes(256, size=32, seed=0)
    return x, y


def small_cnn(lr=1e-3, frozen=False, seed=0):
    keras.utils.set_random_seed(seed)
    i = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(
        8, 5, padding="same", activation="relu", name="c1", trainable=not frozen
    )(i)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(i, keras.layers.Dense(5, activation="softmax", name="out")(h))
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_freshly_initialised_5x5_layers_are_noise_like(seed):
    model = build_demo_model((64, 64, 3), 5, seed=seed)
    h = filter_health(model, "conv1")["conv1"]
    assert h.evidence["noise_like_fraction"] >= 0.9
    assert h.verdict == "noise-like: not converged" and not h.converged


def test_training_on_shapes_makes_first_layer_filters_structured(trained_demo):
    untrained = filter_health(build_demo_model((64, 64, 3), 5, seed=0), "conv1")["conv1"]
    trained = filter_health(trained_demo["model"], "conv1")["conv1"]
    before, after = (
        untrained.evidence["noise_like_fraction"],
        trained.evidence["noise_like_fraction"],
    )
    # Measured: 0.94 -> 0.00 (15 -> 0 of 16 filters noise-like after 8 epochs).
    assert after <= before - 0.25, (before, after)
    assert trained.verdict == "converging" and trained.converged
    # The structure score rises on average.
    assert trained.evidence["mean_structure"] > untrained.evidence["mean_structure"] + 0.1


def test_frozen_layer_is_frozen_not_failing_after_real_training(small_shapes):
    model = small_cnn(frozen=True)
    initial = snapshot_kernels(model)
    model.fit(*small_shapes, epochs=2, batch_size=32, verbose=0)
    report = filter_health(model, probe=small_shapes[0][:16], initial_weights=initial)
    c1, c2 = report["c1"], report["c2"]
    assert c1.evidence["max_drift"] == 0.0 and c1.evidence["trainable"] is False
    # Frozen on purpose: its own verdict (what its random 5x5 filters show follows), not
    # "not learning", not non-converged, no per-filter "not moving" outlines.
    assert c1.verdict == "frozen; noise-like filters" and c1.converged and c1.frozen
    assert "not learning" not in c1.problems and "not_moving" not in c1.flags
    assert c1.evidence["noise_like_fraction"] >= 0.75  # its structure scores are still there
    assert c2.evidence["max_drift"] > 0.01 and "not learning" not in c2.verdict
    assert report.non_converged() == [] and report.frozen() == [c1]
    # The drift rule alone (a trainable layer that has not moved) says "not learning".
    again = filter_health(model, "c2", initial_weights=snapshot_kernels(model))["c2"]
    assert "not learning" in again.problems and not again.converged


def nested_model(seed=0):
    """`base` (a nested Sequential: conv b1 5x5 -> conv b2 3x3) under conv `head_conv` and a
    Dense `out`; `single` is a top-level conv between them."""
    keras.utils.set_random_seed(seed)
    base = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 5, padding="same", activation="relu", name="b1"),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b2"),
        ],
        name="base",
    )
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="single")(base(i))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="head_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(i, keras.layers.Dense(2, activation="softmax", name="out")(x))
    return model, base


def test_nested_frozen_base_a_frozen_single_layer_and_trainable_layers():
    model, base = nested_model()
    base.trainable = False  # keras.io transfer learning; Keras pushes it to b1 and b2
    model.get_layer("single").trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 16, 16, 3), dtype=np.float32), rng.integers(0, 2, 32)
    initial = snapshot_kernels(model)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    report = filter_health(model, probe=x[:8], initial_weights=initial)
    frozen = ["base/b1", "base/b2", "single"]
    assert [h.layer for h in report.frozen()] == frozen
    for path in frozen:
        h = report[path]
        assert h.evidence["trainable"] is False and h.evidence["max_drift"] == 0.0
        assert h.verdict.startswith("frozen") and h.converged, (path, h.verdict)
    for path in ("head_conv", "out"):
        h = report[path]
        assert h.evidence["trainable"] is True and h.evidence["max_drift"] > 0, path
        assert not h.verdict.startswith("frozen") and not h.frozen
    # Keras 3 trains a layer switched back on inside a frozen base: so does the report.
    base.get_layer("b2").trainable = True
    again = filter_health(model, ["base/b1", "base/b2"])
    assert [again["b1"].frozen, again["b2"].frozen] == [True, False]


def test_filters_forced_dead_by_a_large_negative_bias(small_shapes):
    model = small_cnn()
    bias = np.zeros(8, np.float32)
    bias[[1, 4, 6]] = -1000.0
    model.get_layer("c1").bias.assign(bias)
    h = filter_health(model, "c1", probe=small_shapes[0][:16])["c1"]
    assert h.flags["dead"] == [1, 4, 6]
    assert h.evidence["dead_units"] == 3 and h.evidence["dead_fraction"] == 3 / 8
    assert "dead units: 3/8" in h.problems
    rows = h.rows()
    assert [r["dead"] for r in rows] == [i in (1, 4, 6) for i in range(8)]
    assert rows[1]["live_fraction"] == 0.0 and rows[0]["live_fraction"] > 0.0


def test_a_learning_rate_far_too_high_shows_up_as_unhealthy(small_shapes):
    results = {}
    for lr in (1e-3, 0.3):  # Adam's default is 1e-3; 0.3 is 300x too high
        model = small_cnn(lr)
        initial = snapshot_kernels(model)
        model.fit(*small_shapes, epochs=2, batch_size=32, verbose=0)
        results[lr] = filter_health(model, probe=small_shapes[0][:32], initial_weights=initial)
    bad, good = results[0.3], results[1e-3]
    assert {h.layer for h in bad.non_converged()} >= {"c1", "c2"}
    for name in ("c1", "c2"):
        assert bad[name].evidence["median_growth"] > 10
        assert bad[name].evidence["he_scale_ratio"] > 3
        assert any(p.startswith("unstable: weights grew") for p in bad[name].problems)
        assert bad[name].evidence["dead_units"] == 8
    # The same model at a sane rate: nothing unstable, no layer all dead.
    for h in good.values():
        assert not any(p.startswith("unstable") for p in h.problems), h.verdict
        assert h.evidence["dead_units"] < h.evidence["n_units"]


def test_nan_weights_are_reported_not_raised(small_shapes):
    model = small_cnn()
    k = model.get_layer("c1").kernel.numpy()
    k[0, 0, 0, 2] = np.nan
    k[1, 1, 1, 5] = np.inf
    model.get_layer("c1").kernel.assign(k)
    report = filter_health(
        model, probe=small_shapes[0][:4], initial_weights=snapshot_kernels(small_cnn())
    )
    h = report["c1"]
    assert h.problems[0] == "non-finite weights: 2/8 filters" and not h.converged
    assert h.flags["non_finite"] == [2, 5]
    assert np.isnan(h.table["noise_p"][2]) and not h.table["noise_like"][2]
    payload = h.payload()
    text = json.dumps(summary.jsonable(payload), allow_nan=False)  # NaN -> null, no crash
    assert '"spectral_alpha":null' in text.replace(" ", "")
    grid, geometry = health_grid(model, h)
    assert np.isfinite(grid).all() and geometry["rows"] * geometry["cols"] >= 8


def test_depthwise_separable_and_dense_on_image_layers():
    i = keras.Input((12, 12, 3))
    a = keras.layers.DepthwiseConv2D(5, depth_multiplier=2, activation="relu", name="dw")(i)
    b = keras.layers.SeparableConv2D(4, 3, activation="relu", name="sep")(a)
    c = keras.layers.Dense(6, activation="relu", name="fc")(keras.layers.Flatten()(i))
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(b), c])
    model = keras.Model(i, keras.layers.Dense(2, name="out")(x))
    probe = np.random.default_rng(0).random((4, 12, 12, 3), dtype=np.float32)
    report = filter_health(model, probe=probe)
    assert list(report) == ["dw", "sep", "fc", "out"]
    assert report["dw"].n_filters == 6 and report["dw"].kernel_size == (5, 5)
    assert "dead" in report["dw"].columns  # 6 depthwise filters = 6 output channels
    sep = report["sep"]
    assert sep.n_filters == 6 and "dead" not in sep.columns and sep.evidence["n_units"] == 4
    assert any("pointwise" in n for n in sep.notes)
    fc = report["fc"]
    assert fc.kind == "dense_image" and fc.kernel_size == (12, 12) and "noise_p" in fc.columns
    assert report["out"].kind == "dense" and "noise_p" not in report["out"].columns
    assert report["out"].evidence["noise_like_fraction"] is None
    assert any(
        n.startswith("'linear' activation: only units with constant output")
        for n in report["out"].notes
    )
    assert not any("activation:" in n for n in report["fc"].notes)  # relu: sign rule applies
    assert health_grid(model, report["out"]) == (None, None)
    table = report.table()
    assert table.splitlines()[0].split()[:3] == ["layer", "type", "kernel"]
    assert any(line.split()[:4] == ["fc", "Dense", "12x12", "6"] for line in table.splitlines())
    picture = report_image(model, report, width=400)
    assert picture.shape[1] == 400 and picture.shape[2] == 3


def test_initial_weights_from_a_model_with_the_same_layers(small_shapes):
    model = small_cnn()
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    k = model.get_layer("c1").kernel.numpy()
    k[..., 3] *= 2.0  # filter 3 doubled: drift exactly 1, growth 2
    model.get_layer("c1").kernel.assign(k)
    h = filter_health(model, "c1", initial_weights=twin)["c1"]
    np.testing.assert_allclose(h.table["drift"], [0, 0, 0, 1, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(h.table["growth"][3], 2.0, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer": "nope"}, r"No layer named 'nope'"),
        ({"layer": "pool"}, r"'pool' \(MaxPooling2D\) has no kernel to show"),
        (
            {"probe": np.zeros((2, 16, 16, 3), np.float32)},
            r"shape \(2, 16, 16, 3\); model .* expects \(N, 32, 32, 3\)",
        ),
        (
            {"initial_weights": {"c1": np.zeros((3, 3, 3, 8))}},
            r"kernel given for layer 'c1' has shape \(3, 3, 3, 8\); the layer's kernel has shape \(5, 5, 3, 8\)",
        ),
        (
            {"initial_weights": [1, 2]},
            r"initial_weights must be a dict from layer path to kernel array",
        ),
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\)"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        filter_health(small_cnn(), **kwargs)


def test_model_without_weight_layers():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="has no layer with a kernel"):
        filter_health(model)
