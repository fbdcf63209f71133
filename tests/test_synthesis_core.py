"""The synthesis core: objectives (values by hand, arithmetic, each one rises when
maximised), parameterisations fitting a target, transforms, regularisers, and the compiled
render loop (traced once)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from synthesis_helpers import tiny_cnn
from keras_cnnvis.synthesis import objectives as O
from keras_cnnvis.synthesis import regularizers as R
from keras_cnnvis.synthesis import transforms as T
from keras_cnnvis.synthesis.param import fourier_image, pixel_image
from keras_cnnvis.synthesis.render import Renderer, objective_value, render


def ctx(image=None, acts=None, logits=None):
    image = tf.zeros((1, 4, 4, 3)) if image is None else tf.constant(image, tf.float32)
    return O.Context(image, image, acts or {}, logits, logits)


# -- objectives: values ------------------------------------------------------------------------
def test_objective_arithmetic_matches_hand_values():
    acts = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    c = ctx(acts={"l": tf.constant(acts)})
    ch1 = float(O.channel("l", 1)(c))
    assert ch1 == pytest.approx(acts[0, ..., 1].mean() + acts[1, ..., 1].mean())
    assert float(O.channel("l", 1, batch=1)(c)) == pytest.approx(acts[1, ..., 1].mean())
    combo = 2 * O.channel("l", 1) - O.channel("l", 2) / 4 + 3
    assert float(combo(c)) == pytest.approx(2 * ch1 - (acts[..., 2].mean() * 2) / 4 + 3, rel=1e-6)
    assert float((-O.channel("l", 0))(c)) == pytest.approx(-2 * acts[..., 0].mean())
    assert float(sum([O.channel("l", 0), O.channel("l", 2)])(c)) == pytest.approx(
        2 * (acts[..., 0].mean() + acts[..., 2].mean())
    )
    # neuron at the centre (h // 2, w // 2) = (1, 1) of each image
    assert float(O.neuron("l", 2)(c)) == pytest.approx(acts[0, 1, 1, 2] + acts[1, 1, 1, 2])
    assert float(O.deepdream("l")(c)) == pytest.approx(
        (acts[0] ** 2).mean() + (acts[1] ** 2).mean()
    )
    assert combo.layers.count("l") == 2 and combo.model_layers == ["l"]
    with pytest.raises(TypeError):
        O.channel("l", 0) * O.channel("l", 1)


def test_class_objectives_and_margin():
    logits = np.array([[1.0, 3.0, 0.5], [2.0, -1.0, 0.0]], np.float32)
    c = ctx(logits=tf.constant(logits))
    assert float(O.class_logit(1)(c)) == pytest.approx(2.0)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert float(O.class_log_probability(0)(c)) == pytest.approx(logp[:, 0].sum(), rel=1e-5)
    assert float(O.class_log_probability([1, 2])(c)) == pytest.approx(
        logp[0, 1] + logp[1, 2], rel=1e-5
    )
    # margins: image 0 class 1 vs best other (1.0) = 2; image 1 class 2 vs 2.0 = -2
    assert float(O.class_margin([1, 2])(c)) == pytest.approx(0.0)
    assert float(O.class_margin(0)(c)) == pytest.approx((1 - 3) + (2 - 0))


def test_class_objectives_read_one_unit_as_two_classes():
    """One binary unit z is class 1 (z) and class 0 (-z), as keras_cnnvis.inputs reads it;
    log-probabilities are log p and log(1 - p) with p = sigmoid(z)."""
    z = np.array([[2.0], [-1.0]], np.float32)
    c = ctx(logits=tf.constant(z))
    assert float(O.class_logit(1)(c)) == pytest.approx(2.0 - 1.0)
    assert float(O.class_logit(0, batch=1)(c)) == pytest.approx(1.0)
    log_sigmoid = lambda v: -np.log1p(np.exp(-v))  # noqa: E731
    assert float(O.class_log_probability([1, 0])(c)) == pytest.approx(
        log_sigmoid(2.0) + log_sigmoid(1.0), rel=1e-6
    )
    assert float(O.class_log_probability(0)(c)) == pytest.approx(
        log_sigmoid(-2.0) + log_sigmoid(1.0), rel=1e-6
    )
    assert float(O.class_margin(1)(c)) == pytest.approx(2 * 2.0 + 2 * -1.0)


def test_gram_feature_match_tv_and_norms_by_hand():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    ref = np.stack([x.reshape(-1, 5).T @ x.reshape(-1, 5) / 12 for x in f])
    np.testing.assert_allclose(O.gram_matrix(f).numpy(), ref, rtol=1e-5, atol=1e-6)
    c = ctx(acts={"l": tf.constant(f[:1])})
    assert float(O.feature_match("l", f[:1])(c)) == 0.0
    assert float(O.feature_match("l", 2 * f[:1])(c)) == pytest.approx(-0.25)
    assert float(O.gram_style("l", ref[0])(c)) == pytest.approx(0.0, abs=1e-6)
    assert float(O.gram_style("l", ref[0] / 2)(c)) == pytest.approx(-1.0, rel=1e-5)
    img = np.zeros((1, 3, 3, 1), np.float32)
    img[0, 1, 1, 0] = 1.0  # TV over the 2x2 top-left anchors: (0,1): dy=1; (1,0): dx=1; (1,1): 2
    assert float(O.total_variation()(ctx(img))) == pytest.approx((1 + 1 + 2) / 4)
    assert float(O.l2()(ctx(img))) == pytest.approx((8 * 0.25 + 0.25) / 9)
    assert float(O.alpha_norm(4)(ctx(img))) == pytest.approx(9 * 0.5**4 / 9, rel=1e-5)


def test_class_logit_reads_pre_softmax_output_and_restores_the_model():
    model = tiny_cnn()
    x = np.random.default_rng(1).random((2, 16, 16, 3)).astype(np.float32)
    feat = x
    for name in ("conv_a", "conv_b", "gap"):
        feat = model.get_layer(name)(feat)
    feat = np.asarray(feat)
    w, b = model.get_layer("dense").get_weights()
    logits = feat @ w + b
    assert objective_value(model, O.class_logit(2), x) == pytest.approx(
        logits[:, 2].sum(), rel=1e-5
    )
    probs = model(x).numpy()  # the softmax is back after the objective
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert (
        "activation" not in vars(model.get_layer("dense"))
        or model.get_layer("dense").activation.__name__ == "softmax"
    )


# -- objectives rise ---------------------------------------------------------------------------
def rising_objectives():
    rng = np.random.default_rng(2)
    other = rng.random((1, 16, 16, 3)).astype(np.float32)
    model = tiny_cnn()
    target = np.asarray(model.get_layer("conv_b")(model.get_layer("conv_a")(other)))
    gram = O.gram_matrix(target).numpy()[0]
    return model, {
        "channel": O.channel("conv_b", 1),
        "neuron": O.neuron("conv_a", 2),
        "class_logit": O.class_logit(0),
        "class_log_probability": O.class_log_probability(1),
        "class_margin": O.class_margin(2),
        "deepdream": O.deepdream("conv_b"),
        "feature_match": O.feature_match("conv_b", target),
        "gram_style": O.gram_style("conv_b", gram),
        "total_variation": O.total_variation(),
        "l2": O.l2(),
        "alpha_norm": O.alpha_norm(),
        "combined": O.channel("conv_b", 1) - 0.1 * O.total_variation(),
    }


def test_each_objective_rises_over_the_first_steps():
    model, objectives = rising_objectives()

    def noisy(shape, batch, init, seed):  # a non-grey start, so every penalty has a gradient
        return pixel_image(shape, batch, sd=0.5, seed=seed)

    for name, objective in objectives.items():
        result = render(
            model, objective, steps=12, param=noisy, transforms=None, learning_rate=0.05, seed=1
        )
        start, end = result.values[0], objective_value(model, objective, result.images)
        assert end - start > 1e-3 * abs(start), (name, start, end)


# -- parameterisations -------------------------------------------------------------------------
@pytest.mark.parametrize("param", [pixel_image, fourier_image])
def test_every_parameterisation_fits_a_target_image(param):
    from keras_cnnvis.synthesis.samples import sample_image

    target = sample_image("astronaut", 32)
    fit = O.as_objective(lambda c: -tf.reduce_mean(tf.square(c.image - target)))
    result = render(tiny_cnn(32), fit, steps=150, param=param, transforms=None, learning_rate=0.1)
    mse = float(np.mean((result.images[0] - target) ** 2))
    assert mse < 2e-3, mse  # PSNR > 27 dB
    assert mse < 0.01 * float(np.mean((0.5 - target) ** 2))


@pytest.mark.parametrize("param", [pixel_image, fourier_image])
def test_parameterisation_starts_from_an_init_image(param):
    init = np.random.default_rng(3).uniform(0.1, 0.9, (2, 8, 10, 3)).astype(np.float32)
    variables, image_fn = param((8, 10, 3), batch=2, init=init)
    np.testing.assert_allclose(image_fn().numpy(), init, atol=1e-5)
    with pytest.raises(ValueError, match="resize"):
        param((8, 8, 3), init=init)


# -- transforms --------------------------------------------------------------------------------
def test_jitter_is_a_shifted_crop_of_the_reflect_padded_image():
    img = np.random.default_rng(4).random((1, 6, 7, 2)).astype(np.float32)
    padded = np.pad(img, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    rng = tf.random.Generator.from_seed(0)
    shifts = set()
    for _ in range(20):
        out = T.jitter(2)(tf.constant(img), rng).numpy()
        assert out.shape == img.shape
        match = [
            (y, x)
            for y in range(5)
            for x in range(5)
            if np.array_equal(out, padded[:, y : y + 6, x : x + 7])
        ]
        assert match
        shifts.add(match[0])
    assert len(shifts) > 3  # it really moves


def test_pad_rotate_scale_compose():
    img = np.random.default_rng(5).random((2, 9, 9, 3)).astype(np.float32)
    rng = tf.random.Generator.from_seed(0)
    padded = T.pad(3)(tf.constant(img), rng).numpy()
    assert padded.shape == (2, 15, 15, 3) and np.all(padded[:, :3] == 0.5)
    np.testing.assert_allclose(T.rotate([0])(tf.constant(img), rng).numpy(), img, atol=1e-6)
    np.testing.assert_allclose(T.scale([1.0])(tf.constant(img), rng).numpy(), img, atol=1e-6)
    np.testing.assert_allclose(
        T.rotate([90])(tf.constant(img), rng).numpy(), np.rot90(img, k=1, axes=(1, 2)), atol=1e-5
    )
    # Zoom x2 about the centre of a horizontal ramp: out(x) = c + (x - c) / 2 (bilinear is
    # exact on linear functions).
    ramp = np.tile(np.arange(9, dtype=np.float32)[None, None, :, None], (1, 9, 1, 1))
    out = T.scale([2.0])(tf.constant(ramp), rng).numpy()[0, 4, :, 0]
    np.testing.assert_allclose(out, 4 + (np.arange(9) - 4) / 2, atol=1e-5)
    both = T.compose(T.pad(1), T.jitter(1))(tf.constant(img), rng)
    assert tuple(both.shape) == (2, 11, 11, 3)


# -- regularisers ------------------------------------------------------------------------------
def test_yosinski_regularisers_by_hand():
    v = tf.constant(np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1) / 16)
    g = tf.constant(np.linspace(1, -1, 16, dtype=np.float32).reshape(1, 4, 4, 1))
    np.testing.assert_allclose(R.l2_decay(0.1).update(v, g, 0).numpy(), v.numpy() * 0.9)
    # clip 50%: the 8 smallest |v| become 0 (mid-grey)
    out = R.clip_pixels(50).update(v, g, 0).numpy().ravel()
    assert np.all(out[:7] == 0) and np.all(out[8:] == v.numpy().ravel()[8:])
    contrib = np.abs(v.numpy() * g.numpy()).ravel()
    out = R.clip_contributions(25).update(v, g, 0).numpy().ravel()
    thresh = np.sort(contrib)[int(np.floor(15 * 0.25))]
    np.testing.assert_array_equal(out == 0, contrib < thresh)
    out = R.clip_gradients(25).gradient(g, v, 0).numpy().ravel()
    np.testing.assert_array_equal(
        out == 0, np.abs(g.numpy().ravel()) < np.sort(np.abs(g.numpy().ravel()))[3]
    )
    # blur: a constant stays, a delta spreads with total mass kept; only every k-th step
    const = tf.fill((1, 5, 5, 3), 0.3)
    np.testing.assert_allclose(R.blur(1.0, every=2).update(const, None, 0).numpy(), 0.3, atol=1e-6)
    delta = np.zeros((1, 9, 9, 1), np.float32)
    delta[0, 4, 4, 0] = 1
    blurred = R.blur(1.0, every=2).update(tf.constant(delta), None, tf.constant(4)).numpy()
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred[0, 4, 4, 0] < 0.5
    same = R.blur(1.0, every=2).update(tf.constant(delta), None, tf.constant(3)).numpy()
    np.testing.assert_array_equal(same, delta)
    ball = R.linf_ball(np.full((1, 4, 4, 1), 0.5, np.float32), 0.1).update(v, g, 0).numpy()
    assert ball.max() == pytest.approx(0.1) and ball.min() == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="param='pixel'"):
        Renderer(
            tiny_cnn(),
            O.channel("conv_a", 0),
            (16, 16, 3),
            param="fourier",
            regularizers=[R.blur()],
        )


def test_regularisers_in_the_loop_keep_the_objective_rising():
    model = tiny_cnn()
    regs = [R.l2_decay(0.01), R.blur(0.5, every=4), R.clip_pixels(5), R.clip_contributions(5)]
    result = render(model, O.channel("conv_b", 1), steps=16, param="pixel", regularizers=regs)
    assert result.values[-1] > result.values[0]


# -- the loop ----------------------------------------------------------------------------------
def test_render_step_is_traced_once_and_seeded():
    model = tiny_cnn()
    renderer = Renderer(model, O.channel("conv_b", 3), (16, 16, 3), batch=2)
    first = renderer.run(6)
    renderer.run(4)
    renderer.reset()
    again = renderer.run(6)
    assert renderer.step_fn.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(again.values, first.values, rtol=1e-5)
    np.testing.assert_allclose(again.images, first.images, atol=1e-6)
    other = render(model, O.channel("conv_b", 3), batch=2, steps=6, seed=7)
    assert not np.allclose(other.images, first.images)


def test_render_bad_input():
    model = tiny_cnn()
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        render(model, O.channel("nope", 0), steps=1)
    dense = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="height, width, channels"):
        render(dense, O.class_logit(0), steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        render(model, O.channel("conv_a", 0), steps=1, optimizer="lbfgs")
