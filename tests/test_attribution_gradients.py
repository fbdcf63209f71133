"""The attribution seam in gradients.py: ReLU overrides always undone, one compiled function
per configuration that never retraces, no leaked models, live weights, finite differences.
"""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis import attribution as A
from keras_cnnvis import model as G
from keras_cnnvis.model import gradients as GF
from keras_cnnvis.attribution.targets import ClassScore


def small_cnn(name="cnn", seed=0, activation="relu", dtype=None):
    keras.utils.set_random_seed(seed)
    i = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation=activation, name="c1", dtype=dtype)(i)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="c2", dtype=dtype)(x)
    x = keras.layers.ReLU(name="relu2", dtype=dtype)(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap", dtype=dtype)(x)
    x = keras.layers.Dense(5, activation="relu", name="hidden", dtype=dtype)(x)
    out = keras.layers.Dense(3, activation="softmax", name="out", dtype="float32")(x)
    return keras.Model(i, out, name=name)


def images(n=4, seed=1):
    return np.random.default_rng(seed).random((n, 8, 8, 3), dtype=np.float32)


def _state(model):
    """What the overrides touch: the instance attributes of every layer."""
    return {
        info.path: (vars(info.layer).get("activation"), "call" in vars(info.layer))
        for info in G.iter_layers(model)
    }


@pytest.mark.parametrize("method", [A.guided_backprop, A.deconvnet, A.guided_grad_cam])
def test_overrides_are_undone_even_when_the_method_raises(method):
    model = small_cnn()
    before = _state(model)
    plain = A.saliency(model, images(), 0)

    def boom(outputs):
        raise RuntimeError("target failed while traced")

    with pytest.raises(RuntimeError, match="target failed while traced"):
        method(model, images(), target=boom)
    assert _state(model) == before
    assert model.get_layer("c1").activation is keras.activations.relu
    assert "call" not in vars(model.get_layer("relu2"))
    assert model.get_layer("out").activation is keras.activations.softmax
    # ... and the plain gradient is unchanged afterwards.
    np.testing.assert_array_equal(A.saliency(model, images(), 0), plain)


def test_model_overrides_installs_and_removes():
    model = small_cnn()
    with pytest.raises(ZeroDivisionError):
        with G.model_overrides(model, relu="guided", logits=True):
            assert model.get_layer("c1").activation is not keras.activations.relu
            assert "call" in vars(model.get_layer("relu2"))
            assert model.get_layer("out").activation is keras.activations.linear
            1 / 0
    assert model.get_layer("c1").activation is keras.activations.relu
    assert model.get_layer("out").activation is keras.activations.softmax
    assert "call" not in vars(model.get_layer("relu2"))
    assert len(G.relu_sites(model)) == 3  # c1 (activation), relu2 (layer), hidden (Dense)


def test_relu_override_errors():
    i = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, activation="tanh")(i)
    model = keras.Model(i, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match="has no ReLU"):
        A.guided_backprop(model, images(), 0)
    with pytest.raises(ValueError, match="relu must be None or one of"):
        with G.model_overrides(model, relu="leaky"):
            pass


def _cached(model):
    return list(GF._GRADIENT_CACHES[model].values())


def test_repeated_calls_never_retrace():
    model = small_cnn()
    x = images(7)
    calls = [
        lambda x: A.saliency(model, x),
        lambda x: A.guided_backprop(model, x, 1),
        lambda x: A.deconvnet(model, x, ("c1", 2)),
        lambda x: A.grad_cam(model, x, layer="c2"),
        lambda x: A.grad_cam_plus_plus(model, x, layer="c2"),
        lambda x: A.integrated_gradients(model, x, steps=3),
        lambda x: A.smoothgrad("saliency", model, x, n_samples=2),
        lambda x: A.occlusion(model, x, patch=4, stride=4, batch_size=5),
        lambda x: A.score_cam(model, x, layer="c2"),
    ]
    for call in calls:
        call(x)
    counts = [fn.function.experimental_get_tracing_count() for fn in _cached(model)]
    assert counts and all(c == 1 for c in counts)
    # Other batch sizes (and batches split unevenly) reuse the same traces.
    for call in calls:
        call(x[:3])
        call(np.concatenate([x, x]))
    assert [fn.function.experimental_get_tracing_count() for fn in _cached(model)] == counts
    # One compiled function per configuration, shared between methods: input gradients
    # (saliency, IG, SmoothGrad), guided, deconvnet of a unit, conv gradients (Grad-CAM,
    # Grad-CAM++), forward passes on logits (fixing IG's and SmoothGrad's classes) and on
    # outputs (occlusion, Score-CAM), and Score-CAM's capture of c2.
    keys = list(GF._GRADIENT_CACHES[model])
    assert len(keys) == len(set(keys)) == 7


def test_cache_does_not_keep_models_alive():
    model = small_cnn()
    A.grad_cam(model, images(), layer="c2")
    A.guided_backprop(model, images())
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_cache_is_bounded_for_inline_lambdas(monkeypatch):
    monkeypatch.setattr(GF, "_GRADIENT_CACHE_SIZE", 3)
    model = small_cnn()
    for k in range(6):
        A.saliency(model, images(1), target=lambda out: out[:, 0])
    assert len(GF._GRADIENT_CACHES[model]) == 3
    # The same callable object reuses its compiled function.
    target = lambda out: out[:, 1]  # noqa: E731
    A.saliency(model, images(1), target=target)
    A.saliency(model, images(2), target=target)
    assert len(GF._GRADIENT_CACHES[model]) == 3
    assert (
        list(GF._GRADIENT_CACHES[model].values())[-1].function.experimental_get_tracing_count() == 1
    )


def test_compiled_function_sees_weight_updates():
    model, other = small_cnn(seed=0), small_cnn(name="other", seed=5)
    x = images()
    first = A.grad_cam(model, x, 0, layer="c2")
    model.set_weights(other.get_weights())
    np.testing.assert_allclose(
        A.grad_cam(model, x, 0, layer="c2"), A.grad_cam(other, x, 0, layer="c2"), atol=1e-6
    )
    assert not np.allclose(first, A.grad_cam(model, x, 0, layer="c2"))
    assert all(fn.function.experimental_get_tracing_count() == 1 for fn in _cached(model))


def _logit_model():
    keras.utils.set_random_seed(3)
    i = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, activation="tanh", name="c")(i)
    x = keras.layers.Conv2D(4, 3, activation="softplus", name="d")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(i, keras.layers.Dense(3, activation="softmax", name="out")(x))


def test_input_gradients_match_finite_differences():
    model = _logit_model()
    x = np.random.default_rng(0).random((2, 6, 6, 2)).astype(np.float64)
    grads = A.gradient_x_input(model, x.astype(np.float32), 2, reduce=None) / x
    # The explained score is the logit of class 2 (the softmax made linear).
    eps, index = 1e-2, list(np.ndindex(x.shape[1:]))
    bumps = np.zeros((len(index), *x.shape[1:]))
    for k, i in enumerate(index):
        bumps[(k, *i)] = eps
    for n in range(len(x)):
        z_up = _linear_logits(model, x[n] + bumps)[:, 2]
        z_down = _linear_logits(model, x[n] - bumps)[:, 2]
        fd = ((z_up - z_down) / (2 * eps)).reshape(x.shape[1:])
        np.testing.assert_allclose(grads[n], fd, rtol=2e-2, atol=2e-4)


def _linear_logits(model, x):
    with G.model_overrides(model, logits=True):
        return np.asarray(model(x.astype(np.float32)), np.float64)


def test_hidden_layer_gradients_match_finite_differences():
    model = _logit_model()
    x = np.random.default_rng(1).random((1, 6, 6, 2)).astype(np.float32)
    fn = G.gradient_function(
        model,
        ClassScore(model.name),
        wrt="c",
        capture=("c",),
        logits=True,
        arg_specs=[((), tf.int32)],
    )
    result = fn(x, np.array([1], np.int32))
    acts, grads = result.hidden[0], result.grads
    assert acts.shape == grads.shape == (1, 4, 4, 3)
    eps = 1e-2
    for index in [(0, 0, 0, 0), (0, 1, 2, 1), (0, 3, 3, 2)]:

        def shifted(delta):
            def transform(path, out):
                bump = np.zeros(out.shape, np.float32)
                bump[index] = delta
                return out + bump

            with G.model_overrides(model, logits=True), G.capture_outputs(model, ["c"], transform):
                return float(model(x)[0, 1])

        fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
        assert grads[index] == pytest.approx(fd, rel=2e-2, abs=1e-4)


def test_mixed_precision_matches_float32():
    x = images()
    f32 = small_cnn(seed=0)
    f16 = small_cnn(name="f16", seed=0, dtype="mixed_float16")
    f16.set_weights(f32.get_weights())
    assert f16.get_layer("c1").compute_dtype == "float16"
    for method in (A.grad_cam, A.saliency, A.guided_backprop):
        kwargs = {"layer": "c2"} if method is A.grad_cam else {}
        ref, half = method(f32, x, 0, **kwargs), method(f16, x, 0, **kwargs)
        assert half.dtype == np.float32
        np.testing.assert_allclose(half, ref, atol=2e-2 * np.abs(ref).max())


def test_save_load_round_trip(tmp_path):
    model = small_cnn()
    path = str(tmp_path / "m.keras")
    before = A.grad_cam(model, images(), layer="c2")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(A.grad_cam(loaded, images(), layer="c2"), before, atol=1e-6)
    # The cache did not leak into what is saved.
    assert "_GRADIENT_CACHES" not in vars(loaded)
