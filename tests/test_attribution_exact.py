"""Attribution methods on fixed-weight tiny networks, against values computed by hand.

Model A: a 3x3 `arange` image, one 2x2 convolution with two filters (all ones / all minus
ones, biases -10 / +14, ReLU), global average pooling and a linear Dense layer. Window sums
are TL 8, TR 12, BL 20, BR 24, so channel 0 is relu(S - 10) = [[0, 2], [10, 14]] and
channel 1 is relu(14 - S) = [[6, 2], [0, 0]]; pooled [6.5, 2]. Dense kernel
[[1, 0.5], [-2, 3]] gives logits [2.5, 9.25] (class 1 predicted).
"""

import keras
import numpy as np
import pytest

from keras_cnnvis.attribution import (
    cam,
    deconvnet,
    grad_cam,
    grad_cam_plus_plus,
    gradient_x_input,
    guided_backprop,
    guided_grad_cam,
    layer_cam,
    saliency,
)

X = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
DENSE = np.array([[1.0, 0.5], [-2.0, 3.0]], np.float32)


def _conv(relu_form):
    activation = "relu" if relu_form == "activation" else None
    conv = keras.layers.Conv2D(2, 2, activation=activation, name="conv")
    extra = []
    if relu_form == "relu_layer":
        extra = [keras.layers.ReLU(name="relu")]
    elif relu_form == "activation_layer":
        extra = [keras.layers.Activation("relu", name="relu")]
    return conv, extra


def _set(model):
    kernel = np.zeros((2, 2, 1, 2), np.float32)
    kernel[..., 0], kernel[..., 1] = 1.0, -1.0
    conv = _find(model, "conv")
    conv.set_weights([kernel, np.array([-10.0, 14.0], np.float32)])
    _find(model, "dense").set_weights([DENSE, np.zeros(2, np.float32)])
    return model


def _find(model, name):
    from keras_cnnvis.gradients import find_layer

    return find_layer(model, name).layer


class _Sub(keras.Model):
    def __init__(self, relu_form):
        super().__init__(name="sub")
        self.conv, self.extra = _conv(relu_form)
        self.gap = keras.layers.GlobalAveragePooling2D(name="gap")
        self.dense = keras.layers.Dense(2, name="dense")

    def call(self, x):
        x = self.conv(x)
        for layer in self.extra:
            x = layer(x)
        return self.dense(self.gap(x))


def model_a(kind="functional", relu_form="activation", softmax=False):
    """Model A in any of the four model kinds and three ways of writing the ReLU."""
    conv, extra = _conv(relu_form)
    head = [keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(2, name="dense")]
    if softmax:
        head.append(keras.layers.Softmax(name="softmax"))
    if kind == "functional":
        i = keras.Input((3, 3, 1))
        x = conv(i)
        for layer in extra + head:
            x = layer(x)
        model = keras.Model(i, x, name="a")
    elif kind == "sequential":
        model = keras.Sequential([keras.Input((3, 3, 1)), conv, *extra, *head], name="a")
    elif kind == "nested":
        base = keras.Sequential([keras.Input((3, 3, 1)), conv, *extra], name="base")
        i = keras.Input((3, 3, 1))
        x = base(i)
        for layer in head:
            x = layer(x)
        model = keras.Model(i, x, name="a")
    else:
        model = _Sub(relu_form)
        model(X)
    return _set(model)


KINDS = ["functional", "sequential", "nested", "subclassed"]
RELU_FORMS = ["activation", "relu_layer", "activation_layer"]

# Pixel gradients by hand. Windows covering each pixel: TL {00,01,10,11}, TR {01,02,11,12},
# BL {10,11,20,21}, BR {11,12,21,22}. Channel 0 is active in TR, BL, BR; channel 1 in TL, TR.
ACTIVE0 = np.array([[0, 1, 1], [1, 3, 2], [1, 2, 1]], np.float32)  # active ch-0 windows
ACTIVE1 = np.array([[1, 2, 1], [1, 2, 1], [0, 0, 0]], np.float32)  # active ch-1 windows
ALL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32)  # all windows
# dS_c/dA_k = DENSE[k, c] / 4 at every position; kernels +1 (ch 0) and -1 (ch 1).
GRAD = {
    # 0.25 * ACTIVE0 + 0.5 * ACTIVE1
    0: np.array([[0.5, 1.25, 0.75], [0.75, 1.75, 1.0], [0.25, 0.5, 0.25]]),
    # 0.125 * ACTIVE0 - 0.75 * ACTIVE1
    1: np.array([[-0.75, -1.375, -0.625], [-0.625, -1.125, -0.5], [0.125, 0.25, 0.125]]),
}
# Guided: class 0's upstream gradient into channel 1 is -0.5 < 0 and is zeroed.
GUIDED = {0: 0.25 * ACTIVE0, 1: GRAD[1]}
# Deconvnet: relu(upstream) without the forward mask, over all four windows.
DECONV = {0: 0.25 * ALL, 1: (0.125 - 0.75) * ALL}
# Grad-CAM: alpha = DENSE[:, c] / 4. Class 0: relu(.25 ch0 - .5 ch1); class 1: .125 ch0 + .75 ch1.
GRAD_CAM = {0: np.array([[0, 0], [2.5, 3.5]]), 1: np.array([[4.5, 1.75], [1.25, 1.75]])}
CAM = {0: np.array([[-12, -2], [10, 14]]), 1: np.array([[18, 7], [5, 7]])}


@pytest.mark.parametrize("kind", KINDS)
def test_saliency_guided_deconvnet_gradcam_by_hand_on_every_model_kind(kind):
    model = model_a(kind)
    for c in (0, 1):
        np.testing.assert_allclose(saliency(model, X, c)[0], np.abs(GRAD[c]), atol=1e-6)
        np.testing.assert_allclose(
            guided_backprop(model, X, c, reduce=None)[0, ..., 0], GUIDED[c], atol=1e-6
        )
        np.testing.assert_allclose(
            deconvnet(model, X, c, reduce=None)[0, ..., 0], DECONV[c], atol=1e-6
        )
        np.testing.assert_allclose(
            grad_cam(model, X, c, "conv", upsample=False)[0], GRAD_CAM[c], atol=1e-6
        )
    # Predicted class is 1 (logits 2.5 and 9.25).
    np.testing.assert_allclose(saliency(model, X)[0], np.abs(GRAD[1]), atol=1e-6)


@pytest.mark.parametrize("relu_form", RELU_FORMS)
def test_relu_as_activation_argument_relu_layer_or_activation_layer(relu_form):
    model = model_a("functional", relu_form)
    layer = "relu" if relu_form != "activation" else "conv"
    np.testing.assert_allclose(
        guided_backprop(model, X, 0, reduce=None)[0, ..., 0], GUIDED[0], atol=1e-6
    )
    np.testing.assert_allclose(deconvnet(model, X, 0, reduce=None)[0, ..., 0], DECONV[0], atol=1e-6)
    np.testing.assert_allclose(
        grad_cam(model, X, 0, layer, upsample=False)[0], GRAD_CAM[0], atol=1e-6
    )


def test_gradient_x_input_and_cam_family_by_hand():
    model = model_a()
    np.testing.assert_allclose(
        gradient_x_input(model, X, 0, reduce=None)[0, ..., 0], GRAD[0] * X[0, ..., 0], atol=1e-5
    )
    np.testing.assert_allclose(cam(model, X, 1, "conv", upsample=False)[0], CAM[1], atol=1e-5)
    np.testing.assert_allclose(cam(model, X, 0, "conv", upsample=False)[0], CAM[0], atol=1e-5)
    # CAM's spatial mean is the logit: (18 + 7 + 5 + 7) / 4 = 9.25.
    assert cam(model, X, None, "conv", upsample=False)[0].mean() == pytest.approx(9.25)
    # LayerCAM: relu(sum_k relu(g_k) A_k); class 1: g = [.125, .75] everywhere -> Grad-CAM.
    np.testing.assert_allclose(
        layer_cam(model, X, 1, "conv", upsample=False)[0], GRAD_CAM[1], atol=1e-6
    )
    # class 0: only channel 0's gradient (.25) is positive -> .25 * ch0.
    np.testing.assert_allclose(
        layer_cam(model, X, 0, "conv", upsample=False)[0], [[0, 0.5], [2.5, 3.5]], atol=1e-6
    )
    # Grad-CAM++ with constant gradients g: alpha = 1 / (2 + sum(A) g); class 1 weights
    # w_k = 4 * alpha_k * g_k: ch0 sum 26 -> alpha 1 / 5.25, ch1 sum 8 -> alpha 1 / 8.
    a0, a1 = 1 / (2 + 26 * 0.125), 1 / (2 + 8 * 0.75)
    w0, w1 = 4 * a0 * 0.125, 4 * a1 * 0.75
    ch0, ch1 = np.array([[0, 2], [10, 14]]), np.array([[6, 2], [0, 0]])
    np.testing.assert_allclose(
        grad_cam_plus_plus(model, X, 1, "conv", upsample=False)[0], w0 * ch0 + w1 * ch1, rtol=1e-5
    )
    # Guided Grad-CAM = guided backprop * upsampled Grad-CAM.
    expected = GUIDED[0] * grad_cam(model, X, 0, "conv")[0]
    np.testing.assert_allclose(
        guided_grad_cam(model, X, 0, "conv", reduce=None)[0, ..., 0], expected, atol=1e-6
    )


def test_logits_explain_the_pre_softmax_score():
    model = model_a(softmax=True)
    # With logits=True the final Softmax layer is made linear: exactly the values above.
    np.testing.assert_allclose(saliency(model, X, 0)[0], np.abs(GRAD[0]), atol=1e-6)
    np.testing.assert_allclose(
        grad_cam(model, X, 0, "conv", upsample=False)[0], GRAD_CAM[0], atol=1e-6
    )
    # Without, the gradient of p0 = softmax(z)_0 is p0 * (dz0 - p0 dz0 - p1 dz1).
    z = np.array([2.5, 9.25])
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    expected = p[0] * (GRAD[0] - p[0] * GRAD[0] - p[1] * GRAD[1])
    np.testing.assert_allclose(saliency(model, X, 0, logits=False)[0], np.abs(expected), rtol=1e-4)


def test_hidden_unit_targets_by_hand():
    model = model_a()
    # conv channel 0 at (1, 1) = window BR (active): its gradient is the kernel on BR.
    br = np.zeros((3, 3), np.float32)
    br[1:, 1:] = 1
    np.testing.assert_allclose(saliency(model, X, ("conv", 0, 1, 1))[0], br)
    # conv channel 0 at (0, 0) is inactive (pre-activation -2): zero gradient.
    np.testing.assert_allclose(saliency(model, X, ("conv", 0, 0, 0))[0], 0)
    # channel 1's spatial mean: -1/4 per active window (TL, TR).
    np.testing.assert_allclose(
        gradient_x_input(model, X, ("conv", 1), reduce=None)[0, ..., 0],
        -0.25 * ACTIVE1 * X[0, ..., 0],
    )
    # The guided gradient of a unit sees positive upstream gradient (1/4): unchanged.
    np.testing.assert_allclose(
        guided_backprop(model, X, ("conv", 1), reduce=None)[0, ..., 0], -0.25 * ACTIVE1
    )


def test_dense_relu_is_overridden_too():
    # x = [1, 2]; h = relu(x @ [[1, -1], [1, 1]]) = relu([-1, 3]) = [0, 3]; s = h @ [2, -1].
    i = keras.Input((1, 2, 1))
    h = keras.layers.Dense(2, activation="relu", name="hidden")(keras.layers.Flatten()(i))
    model = keras.Model(i, keras.layers.Dense(1, name="out")(h))
    model.get_layer("hidden").set_weights(
        [np.array([[1, 1], [-1, 1]], np.float32), np.zeros(2, np.float32)]
    )
    model.get_layer("out").set_weights([np.array([[2], [-1]], np.float32), np.zeros(1, np.float32)])
    x = np.array([1, 2], np.float32).reshape(1, 1, 2, 1)
    # dS/dh = [2, -1], forward mask [0, 1]:
    # plain [0, -1] -> dx = [-1, -1]; guided relu([2, -1]) * mask = 0 -> dx = 0;
    # deconvnet relu([2, -1]) = [2, 0] -> dx = [2, -2].
    # A one-unit head reads as two classes (keras_cnnvis.inputs): class 1 is the unit s.
    np.testing.assert_allclose(
        gradient_x_input(model, x, 1, reduce=None).ravel() / x.ravel(), [-1, -1]
    )
    np.testing.assert_allclose(guided_backprop(model, x, 1, reduce=None).ravel(), [0, 0])
    np.testing.assert_allclose(deconvnet(model, x, 1, reduce=None).ravel(), [2, -2])
