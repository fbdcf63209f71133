"""Attribution methods against brute-force references and exact properties; targets on
multi-output, segmentation and regression models; clear errors for bad input.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis import attribution as A
from keras_cnnvis.attribution.integrated_gradients import make_baseline, path_points
from keras_cnnvis.attribution.occlusion import occluder, patch_positions


def linear_model(shape=(6, 6, 2), seed=0):
    """f(x) = sum(w * x) + 0.5 with fixed random w (one output unit: class 1 is f)."""
    i = keras.Input(shape)
    out = keras.layers.Dense(1, name="lin")(keras.layers.Flatten()(i))
    model = keras.Model(i, out, name="linear")
    w = np.random.default_rng(seed).normal(size=(int(np.prod(shape)), 1)).astype(np.float32)
    model.get_layer("lin").set_weights([w, np.array([0.5], np.float32)])
    return model, w.reshape(shape)


def cnn(seed=0, activation="softmax"):
    """12x12 images -> two convolutions -> 4 class scores (`activation=None`: logits)."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(i)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    return keras.Model(i, keras.layers.Dense(4, activation=activation, name="out")(x), name="cnn")


def batch(n=3, shape=(12, 12, 3), seed=1):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def test_occlusion_on_a_linear_model_is_the_hand_computed_drop_per_patch():
    model, w = linear_model()
    x = batch(2, (6, 6, 2))
    assert patch_positions(6, 3, 2) == [0, 2, 3]  # the last patch touches the border
    # A one-unit head reads as two classes (keras_cnnvis.inputs): class 1 is f itself.
    maps = A.occlusion(model, x, target=1, patch=3, stride=2, fill=0.3, batch_size=4)
    for n in range(2):
        total = np.zeros((6, 6))
        count = np.zeros((6, 6))
        for y in (0, 2, 3):
            for x0 in (0, 2, 3):
                box = (slice(y, y + 3), slice(x0, x0 + 3))
                drop = np.sum(w[box] * (x[n][box] - 0.3))  # f(x) - f(occluded)
                total[box] += drop
                count[box] += 1
        np.testing.assert_allclose(maps[n], total / count, rtol=1e-4, atol=1e-5)
    # One patch covering the image: every pixel holds f(x) - f(fill image).
    whole = A.occlusion(model, x, 1, patch=6, stride=1, fill=np.array([0.1, 0.9]))
    expected = np.sum(w * (x - np.array([0.1, 0.9])), axis=(1, 2, 3))
    np.testing.assert_allclose(
        whole, np.broadcast_to(expected[:, None, None], (2, 6, 6)), rtol=1e-4
    )
    # The default fill is the images' mean colour.
    mean_fill = A.occlusion(model, x, 1, patch=6, stride=1)
    expected = np.sum(w * (x - x.mean(axis=(0, 1, 2))), axis=(1, 2, 3))
    np.testing.assert_allclose(mean_fill[:, 0, 0], expected, rtol=1e-4)


def test_occlusion_patch_scales_with_the_image_side():
    # An eighth of the side, at least 8 pixels; the stride half the patch; given sizes win.
    assert occluder((4, 64, 64, 3)) == ((8, 8), (4, 4))
    assert occluder((4, 16, 16, 3)) == ((8, 8), (4, 4))
    assert occluder((4, 224, 224, 3)) == ((28, 28), (14, 14))
    assert occluder((4, 96, 160, 3)) == ((12, 20), (6, 10))
    assert occluder((4, 224, 224, 3), patch=10) == ((10, 10), (5, 5))
    assert occluder((4, 224, 224, 3), stride=3) == ((28, 28), (3, 3))
    # 15 x 15 positions on a 224-pixel image (the 8-pixel patch had 55 x 55).
    assert len(patch_positions(224, 28, 14)) == 15 and len(patch_positions(224, 8, 4)) == 55
    with pytest.raises(ValueError, match="patch must be a positive int"):
        occluder((4, 64, 64, 3), patch=0)
    # The defaults are the sizes given explicitly; an image under 8 pixels needs a patch.
    model, x = cnn(), batch(2)
    np.testing.assert_array_equal(A.occlusion(model, x), A.occlusion(model, x, None, 8, 4))
    with pytest.raises(ValueError, match=r"patch \(8, 8\) is larger than the images"):
        A.occlusion(linear_model()[0], batch(2, (6, 6, 2)), 1)


def test_occlusion_batching_does_not_change_the_result():
    model = cnn()
    x = batch(3)
    a = A.occlusion(model, x, patch=4, stride=3, batch_size=7)
    b = A.occlusion(model, x, patch=4, stride=3, batch_size=1000)
    np.testing.assert_allclose(a, b, atol=1e-6)


def smooth_cnn():
    keras.utils.set_random_seed(4)
    i = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, activation="tanh", kernel_initializer="he_normal")(i)
    x = keras.layers.Conv2D(8, 3, activation="softplus", kernel_initializer="he_normal")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(
        i, keras.layers.Dense(4, activation="softmax", kernel_initializer="he_normal")(x)
    )


def test_integrated_gradients_completeness_and_linear_exactness():
    # Completeness within 1% on a smooth network (the trained ReLU demo model is checked
    # in test_attribution_trained.py).
    model = smooth_cnn()
    x = batch(4)
    for baseline in ("zeros", "blur", 0.5):
        ig = A.integrated_gradients(model, x, baseline=baseline, steps=64)
        classes = np.argmax(model.predict(x, verbose=0), -1)
        base = make_baseline(x, baseline)
        logits = _logits(model, x, classes) - _logits(model, base, classes)
        np.testing.assert_allclose(ig.sum(axis=(1, 2)), logits, rtol=1e-2, atol=1e-4)
    # On a linear model IG is exact with any rule: w * (x - baseline).
    lin, w = linear_model()
    xl = batch(2, (6, 6, 2))
    for rule in ("gausslegendre", "trapezoid"):
        ig = A.integrated_gradients(lin, xl, 1, baseline=0.2, steps=2, rule=rule, reduce=None)
        np.testing.assert_allclose(ig, w * (xl - 0.2), rtol=1e-5, atol=1e-6)
    alphas, weights = path_points(3, "trapezoid")
    np.testing.assert_allclose(alphas, [0, 0.5, 1])
    np.testing.assert_allclose(weights, [0.25, 0.5, 0.25])


def _logits(model, x, classes):
    from keras_cnnvis.gradients import model_overrides

    with model_overrides(model, logits=True):
        out = np.asarray(model(x))
    return out[np.arange(len(x)), classes]


def test_smoothgrad_averages_the_method_over_noisy_copies():
    model = cnn()
    x = batch(3)
    classes = np.argmax(model.predict(x, verbose=0), -1)
    # No noise: exactly the method.
    np.testing.assert_allclose(
        A.smoothgrad("saliency", model, x, n_samples=3, noise_level=0.0),
        A.saliency(model, x),
        rtol=1e-6,
    )
    # With noise: the mean of the method on the same noisy copies, for the clean classes.
    rng = np.random.default_rng(7)
    span = (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).reshape(-1, 1, 1, 1)
    manual = np.mean(
        [
            A.guided_backprop(
                model,
                x
                + (0.2 * span).astype(np.float32) * rng.standard_normal(x.shape, dtype=np.float32),
                classes,
            )
            for _ in range(4)
        ],
        axis=0,
    )
    smooth = A.smoothgrad(A.guided_backprop, model, x, n_samples=4, noise_level=0.2, seed=7)
    np.testing.assert_allclose(smooth, manual, rtol=1e-5, atol=1e-7)
    squared = A.smoothgrad("gradient_x_input", model, x, n_samples=2, squared=True)
    assert (squared >= 0).all()


def test_score_cam_matches_a_brute_force_loop():
    model = cnn()
    x = batch(2)
    maps = A.score_cam(model, x, layer="c2", upsample=False)
    extractor = keras.Model(model.inputs, model.get_layer("c2").output)
    acts = np.asarray(extractor(x))
    classes = np.argmax(model.predict(x, verbose=0), -1)
    for n in range(2):
        cam = np.zeros(acts.shape[1:3])
        for k in range(acts.shape[-1]):
            a = acts[n, ..., k]
            up = tf.image.resize(a[None, ..., None], (12, 12)).numpy()[0, ..., 0]
            if up.max() == up.min():
                continue
            mask = (up - up.min()) / (up.max() - up.min())
            score = model.predict((x[n] * mask[..., None])[None], verbose=0)[0, classes[n]]
            cam += score * a
        np.testing.assert_allclose(maps[n], np.maximum(cam, 0), rtol=1e-4, atol=1e-6)
    # max_channels keeps the channels with the highest peaks: a different, valid map.
    top = A.score_cam(model, x, layer="c2", max_channels=3)
    assert top.shape == (2, 12, 12) and (top >= 0).all()


def test_cam_equals_grad_cam_on_gap_dense_models():
    keras.utils.set_random_seed(2)
    i = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv")(i)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(i, keras.layers.Dense(3, activation="softmax")(x))
    xs = batch(3, (10, 10, 3))
    for c in range(3):
        # d logit / dA = w_c / (h w) everywhere, so Grad-CAM = relu(CAM) / 64.
        np.testing.assert_allclose(
            A.grad_cam(model, xs, c, upsample=False),
            np.maximum(A.cam(model, xs, c, upsample=False), 0) / 64,
            rtol=1e-4,
            atol=1e-6,
        )


def test_targets_labels_one_hot_and_per_image_classes():
    model = cnn()
    x = batch(3)
    labels = np.array([2, 0, 3])
    per_image = A.saliency(model, x, labels)
    for n, c in enumerate(labels):
        np.testing.assert_allclose(
            per_image[n], A.saliency(model, x[n : n + 1], int(c))[0], rtol=1e-5, atol=1e-8
        )
    np.testing.assert_allclose(A.saliency(model, x, np.eye(4)[labels]), per_image)
    np.testing.assert_allclose(
        A.saliency(model, x, "predicted"),
        A.saliency(model, x, np.argmax(model.predict(x, verbose=0), -1)),
    )


def test_callable_targets_on_multi_output_segmentation_and_regression_models():
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="trunk")(i)
    a = keras.layers.Dense(3, name="head_a")(keras.layers.Flatten()(h))
    b = keras.layers.Dense(2, name="head_b")(keras.layers.GlobalAveragePooling2D()(h))
    two = keras.Model(i, [a, b])
    only_b = keras.Model(i, b)
    x = batch(2)
    np.testing.assert_allclose(
        A.saliency(two, x, lambda outs: outs[1][:, 1]), A.saliency(only_b, x, 1), rtol=1e-6
    )
    with pytest.raises(ValueError, match="several outputs and no choice was made"):
        A.saliency(two, x)
    # Segmentation: a linear 1x1 conv; the score is class 1 summed over pixels, whose
    # gradient is that class's kernel at every pixel.
    j = keras.Input((5, 5, 3))
    seg = keras.Model(j, keras.layers.Conv2D(2, 1, name="seg")(j))
    kernel = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], np.float32).reshape(1, 1, 3, 2)
    seg.get_layer("seg").set_weights([kernel, np.zeros(2, np.float32)])
    grads = A.gradient_x_input(
        seg, np.ones((1, 5, 5, 3), np.float32), lambda out: out[..., 1], reduce=None
    )
    np.testing.assert_allclose(grads[0], np.broadcast_to([-2.0, 3.0, 0.25], (5, 5, 3)))
    with pytest.raises(ValueError, match=r"not \(batch, classes\)"):
        A.saliency(seg, np.ones((1, 5, 5, 3), np.float32))
    # Regression: a single output unit.
    lin, w = linear_model()
    np.testing.assert_allclose(
        A.gradient_x_input(
            lin, np.ones((1, 6, 6, 2), np.float32), lambda out: out[:, 0], reduce=None
        )[0],
        w,
        rtol=1e-6,
    )


class _Sub(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.conv = keras.layers.Conv2D(3, 3, activation="relu", name="conv")
        self.gap = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(4, name="dense")

    def call(self, x):
        return self.dense(self.gap(self.conv(x)))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m, x: A.grad_cam(m, x, layer="conv9"),
            r"No layer named 'conv9'.*'c1' \(Conv2D\), 'c2' \(Conv2D\)",
        ),
        (
            lambda m, x: A.grad_cam(m, x, layer="hidden"),
            r"grad_cam needs a layer with a spatial output.*'hidden' outputs \(None, 8\)",
        ),
        (
            lambda m, x: A.score_cam(m, x, layer="gmp"),
            r"score_cam needs a layer with a spatial output",
        ),
        (
            lambda m, x: A.saliency(m, x, 4),
            r"Class index 4 is out of range for model 'cnn' with 4 classes",
        ),
        (lambda m, x: A.saliency(m, x, [0, 1]), r"needs one index per image \(3\)"),
        (
            lambda m, x: A.saliency(m, x[:, :10]),
            r"The images have shape \(3, 10, 12, 3\); model 'cnn' expects \(N, 12, 12, 3\)",
        ),
        (
            lambda m, x: A.saliency(m, x[0]),
            r"expected a batch of images \(N, 12, 12, 3\)\. For one image pass image\[None\]",
        ),
        (
            lambda m, x: A.saliency(m, np.full(x.shape, "a")),
            r"The images have dtype <U1; pass real numbers",
        ),
        (
            lambda m, x: A.saliency(m, x, ("c2", 8)),
            r"Channel 8 is out of range for layer 'c2' with 8 channels",
        ),
        (lambda m, x: A.saliency(m, x, ("c2", 1, 6, 0)), r"outside the 6x6 output of layer 'c2'"),
        (lambda m, x: A.saliency(m, x, ("hidden", 1, 0, 0)), r"no spatial output"),
        (lambda m, x: A.saliency(m, x, "true"), r"Unknown target 'true'"),
        (lambda m, x: A.saliency(m, x, lambda out: tf.reduce_sum(out)), r"returned a scalar"),
        (
            lambda m, x: A.cam(m, x),
            r"cam needs layer 'c2' to be followed only by.*'gmp' \(GlobalMaxPooling2D\)",
        ),
        (lambda m, x: A.occlusion(m, x, patch=13), r"patch \(13, 13\) is larger than the images"),
        (
            lambda m, x: A.integrated_gradients(m, x, baseline=np.zeros((5, 5))),
            r"does not broadcast",
        ),
        (lambda m, x: A.smoothgrad("blur", m, x), r"Unknown attribution method 'blur'"),
        (lambda m, x: A.gradient_x_input(m, x, reduce="mean"), r"reduce must be one of"),
    ],
)
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(cnn(), batch())


def test_subclassed_model_errors_are_checked_in_the_graph():
    model = _Sub()
    x = batch(2)
    model(x)
    assert A.grad_cam(model, x, layer="conv").shape == (2, 12, 12)
    with pytest.raises(ValueError, match="A class index is out of range for model 'sub'"):
        A.saliency(model, x, 7)
    with pytest.raises(ValueError, match="target channel is out of range for layer 'conv'"):
        A.saliency(model, x, ("conv", 5))
    with pytest.raises(ValueError, match="grad_cam needs a layer with a spatial output.*'dense'"):
        A.grad_cam(model, x, layer="dense")
