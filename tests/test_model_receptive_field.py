"""receptive_field: hand-computed geometry and the empirical field from input gradients
(gradient of one unit w.r.t. the input, taken through capture_outputs under a GradientTape).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.model import capture_outputs
from keras_cnnvis.model.receptive_field import ReceptiveField, receptive_field

L = keras.layers
POS = keras.initializers.RandomUniform(0.1, 1.0)  # positive weights: no cancellation


def empirical_box(model, layer, row, col, channel=0, seed=1):
    """Bounding box (top, left, bottom, right) of the input pixels with a non-zero
    gradient of unit (row, col, channel) of `layer`; (0, 0, 0, 0) when there are none."""
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    x = tf.constant(np.random.default_rng(seed).random(shape), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        with capture_outputs(model, [layer]) as cap:
            model(x, training=False)
        unit = cap[layer][0, row, col, channel]
    grad = tape.gradient(unit, x)
    seen = np.abs(grad[0].numpy()).sum(-1) > 0
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    if not rows.size:
        return 0, 0, 0, 0
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def units_to_check(rf):
    h, w, _ = rf.output_shape
    picks = {(0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0), (h // 2, w // 2), (1, min(2, w - 1))}
    return sorted(picks)


# Linear layers with positive kernels and average pooling: the gradient of a unit is non-zero
# on its whole field (clipped at the border), so the bounding boxes must be equal.
def strided_same():
    i = keras.Input((37, 30, 2))
    x = L.Conv2D(3, (3, 5), strides=2, padding="same", kernel_initializer=POS, name="a")(i)
    x = L.Conv2D(3, 3, strides=2, padding="same", kernel_initializer=POS, name="b")(x)
    x = L.Conv2D(2, (4, 2), strides=(1, 2), padding="same", kernel_initializer=POS, name="c")(x)
    return keras.Model(i, x), ["a", "b", "c"]


def valid_dilated_pools():
    i = keras.Input((40, 35, 1))
    x = L.Conv2D(3, 3, dilation_rate=2, padding="valid", kernel_initializer=POS, name="a")(i)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="p1")(x)
    x = L.Conv2D(3, 3, dilation_rate=(2, 3), padding="same", kernel_initializer=POS, name="b")(x)
    x = L.AveragePooling2D(2, name="p2")(x)
    x = L.Conv2D(2, 2, strides=2, padding="valid", kernel_initializer=POS, name="c")(x)
    return keras.Model(i, x), ["a", "p1", "b", "p2", "c"]


def depthwise_separable():
    i = keras.Input((33, 33, 2))
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depthwise_initializer=POS, name="dw")(i)
    x = L.SeparableConv2D(
        4,
        5,
        dilation_rate=2,
        padding="same",
        depthwise_initializer=POS,
        pointwise_initializer=POS,
        name="sep",
    )(x)
    x = L.Conv2D(2, 3, strides=2, groups=2, kernel_initializer=POS, name="grouped")(x)
    return keras.Model(i, x), ["dw", "sep", "grouped"]


def nested():
    inner = keras.Sequential(
        [
            keras.Input((15, 14, 3)),
            L.Conv2D(3, 3, strides=2, padding="same", kernel_initializer=POS, name="ia"),
            L.BatchNormalization(name="ibn"),
            L.Activation("linear", name="iact"),
            L.Dropout(0.5, name="idrop"),
            L.Conv2D(3, 3, padding="valid", kernel_initializer=POS, name="ib"),
        ],
        name="base",
    )
    i = keras.Input((31, 29, 2))
    x = L.ZeroPadding2D(((2, 1), (0, 3)), name="zpad")(i)
    x = L.Conv2D(3, 3, strides=2, padding="valid", kernel_initializer=POS, name="stem")(x)
    x = L.Cropping2D(((1, 0), (0, 1)), name="crop")(x)
    x = L.Rescaling(2.0, name="rescale")(x)
    x = inner(x)
    x = L.Conv2D(2, 3, padding="same", kernel_initializer=POS, name="top")(x)
    return keras.Model(i, x), ["zpad", "stem", "crop", "base/ia", "base/ib", "base", "top"]


def residual():
    # 16 channels into the strided 1x1 convolution: with fewer, the oneDNN kernel behind its
    # gradient in TF 2.21 corrupts memory (uxlfoundation/oneDNN#6035, IC < channel block).
    i = keras.Input((32, 27, 2))
    a = L.Conv2D(16, 3, strides=2, padding="same", kernel_initializer=POS, name="a")(i)
    b = L.Conv2D(16, 3, padding="same", kernel_initializer=POS, name="b1")(a)
    b = L.Conv2D(16, 3, padding="same", kernel_initializer=POS, name="b2")(b)
    s = L.Conv2D(16, 1, kernel_initializer=POS, name="skip")(a)
    x = L.Add(name="add")([b, s])
    c = L.Conv2D(2, 5, strides=2, padding="valid", kernel_initializer=POS, name="wide")(x)
    n = L.Conv2D(2, 1, strides=2, padding="valid", kernel_initializer=POS, name="narrow")(x)
    x = L.Concatenate(name="cat")([c, L.Cropping2D(((1, 1), (1, 1)), name="cropn")(n)])
    return keras.Model(i, x), ["a", "b2", "skip", "add", "wide", "cropn", "cat"]


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.c1 = L.Conv2D(3, 3, strides=2, padding="same", kernel_initializer=POS, name="c1")
        self.pool = L.AveragePooling2D(2, name="pool")
        self.c2 = L.Conv2D(2, 3, kernel_initializer=POS, name="c2")

    def call(self, x):
        return self.c2(self.pool(self.c1(x)))


def augmented():
    """keras.io style: an augmentation block (identity at inference) and preprocessing
    inside the model, nested, then convolutions."""
    augment = keras.Sequential(
        [
            L.RandomFlip("horizontal"),
            L.RandomRotation(0.1),
            L.RandomZoom(0.1),
            L.RandomTranslation(0.1, 0.1),
            L.RandomContrast(0.2),
            L.RandomBrightness(0.1),
        ],
        name="augment",
    )
    i = keras.Input((26, 23, 3))
    x = augment(i)
    x = L.Rescaling(1 / 255.0, name="scale")(x)
    x = L.Normalization(mean=[0.5, 0.4, 0.3], variance=[1.0, 1.0, 1.0], name="norm")(x)
    x = L.Conv2D(4, 3, strides=2, padding="same", kernel_initializer=POS, name="a")(x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.SpatialDropout2D(0.3, name="sdrop")(x)
    x = L.Conv2D(2, 3, kernel_initializer=POS, name="b")(x)
    return keras.Model(i, x), ["augment", "scale", "norm", "a", "ln", "b"]


class Blur(L.Layer):
    """A custom layer without a rule: a fixed 3x3 box blur (measured from gradients)."""

    def call(self, x):
        k = tf.ones((3, 3, x.shape[-1], 1)) / 9.0
        return tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "VALID")


def resampling():
    """Layers that change the size without an analytic rule here: measured from gradients."""
    i = keras.Input((30, 27, 2))
    x = L.Conv2D(3, 3, strides=2, padding="same", kernel_initializer=POS, name="a")(i)
    x = L.UpSampling2D(2, name="up")(x)
    x = L.Conv2D(3, 3, padding="same", kernel_initializer=POS, name="b")(x)
    x = L.Conv2DTranspose(3, 3, strides=2, padding="same", kernel_initializer=POS, name="tr")(x)
    x = L.Resizing(20, 24, name="resize")(x)
    x = L.CenterCrop(16, 18, name="center")(x)
    x = Blur(name="blur")(x)
    x = L.UpSampling2D((2, 1), interpolation="bilinear", name="up2")(x)
    x = L.Conv2D(2, 3, strides=2, kernel_initializer=POS, name="c")(x)
    return keras.Model(i, x), ["up", "b", "tr", "resize", "center", "blur", "up2", "c"]


def operations():
    """Residual sums written as `x + y` (Keras operations, not layers, as in ConvNeXt)."""
    i = keras.Input((20, 20, 16))
    a = L.Conv2D(16, 3, padding="same", kernel_initializer=POS, name="a")(i)
    b = L.Conv2D(16, 3, padding="same", kernel_initializer=POS, name="b")(a)
    x = a + b
    x = keras.ops.multiply(x, 0.5)
    c = L.Conv2D(2, 3, strides=2, kernel_initializer=POS, name="c")(x)
    return keras.Model(i, c), ["a", "b", "c"]


@pytest.mark.parametrize(
    "build",
    [
        strided_same,
        valid_dilated_pools,
        depthwise_separable,
        nested,
        residual,
        augmented,
        resampling,
        operations,
    ],
)
def test_analytic_field_equals_the_input_gradient_support(build):
    keras.utils.set_random_seed(0)
    model, layers = build()
    for layer in layers:
        rf = receptive_field(model, layer)
        for row, col in units_to_check(rf):
            box = rf.box(row, col)
            assert empirical_box(model, layer, row, col) == box, (layer, row, col, rf)
            top, left, bottom, right = rf.window(row, col)
            assert bottom - top == rf.size[0] and right - left == rf.size[1]
            if box[2] > box[0]:  # the window holds what the unit sees
                assert top <= box[0] and left <= box[1], (layer, row, col)
                assert box[2] <= bottom and box[3] <= right, (layer, row, col)


def test_geometry_of_upsampling_and_measured_layers():
    model, _ = resampling()
    up = receptive_field(model, "up")
    # A 3x3 stride-2 conv, then nearest x2: units 2k and 2k+1 see the same 3 pixels; one
    # 4-pixel window per unit, one pixel apart, holds every field.
    assert up.jump == (1, 1) and up.size == (4, 4) and up.measured == ("up",)
    assert up.box(4, 4) == up.box(5, 5) and up.box(4, 4)[2] - up.box(4, 4)[0] == 3
    b = receptive_field(model, "b")
    assert b.jump == (1, 1) and b.measured == ("up",)
    tr = receptive_field(model, "tr")
    assert tr.jump == (0.5, 0.5)  # finer than a pixel: a float
    assert receptive_field(model, "a").measured == ()
    model, layers = augmented()
    for layer in layers:
        assert receptive_field(model, layer).measured == ()  # every one has a rule
    assert receptive_field(model, "b").size == (7, 7)


def test_subclassed_model_needs_and_uses_input_shape():
    model = Subclassed()
    model(np.zeros((1, 23, 21, 1), np.float32))
    with pytest.raises(ValueError, match="Cannot tell the input shape"):
        receptive_field(model, "c2")
    rf = receptive_field(model, "c2", input_shape=(23, 21, 1))
    # c1: k3 s2 same on 23 rows -> 12 rows, pad before (11*2+3-23)//2 = 1; 21 cols -> pad 1.
    # pool 2/2: size 3+2=5... c2 3x3 valid with jump 4.
    assert rf.size == (3 + 1 * 2 + 2 * 4, 3 + 1 * 2 + 2 * 4)
    assert rf.jump == (4, 4) and rf.start == (-1, -1)
    x = tf.constant(np.random.default_rng(0).random((1, 23, 21, 1)), tf.float32)
    for row, col in units_to_check(rf):
        with tf.GradientTape() as tape:
            tape.watch(x)
            with capture_outputs(model, ["c2"]) as cap:
                model(x)
            unit = cap["c2"][0, row, col, 0]
        seen = np.abs(tape.gradient(unit, x)[0, ..., 0].numpy()) > 0
        r, c = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
        assert (r[0], c[0], r[-1] + 1, c[-1] + 1) == rf.box(row, col)


def test_hand_computed_values():
    model, _ = strided_same()
    # a: 3x5 kernel, stride 2, "same" on 37x30: 19x15 out; rows pad (18*2+3-37)//2 = 1,
    # cols pad (14*2+5-30)//2 = 1.
    a = receptive_field(model, "a")
    assert (a.size, a.jump, a.start) == ((3, 5), (2, 2), (-1, -1))
    assert a.output_shape == (19, 15, 3) and a.input_size == (37, 30)
    # b: 3x3 stride 2 on 19x15 -> 10x8; pad rows (9*2+3-19)//2 = 1, cols (7*2+3-15)//2 = 1.
    b = receptive_field(model, "b")
    assert (b.size, b.jump, b.start) == ((3 + 2 * 2, 5 + 2 * 2), (4, 4), (-1 - 2, -1 - 2))
    # c: 4x2 kernel, strides (1, 2) on 10x8: rows pad (9+4-10)//2 = 1, cols (3*2+2-8)//2 = 0.
    c = receptive_field(model, "c")
    assert (c.size, c.jump, c.start) == ((7 + 3 * 4, 9 + 1 * 4), (4, 8), (-3 - 4, -3))
    assert c.window(2, 1) == (-7 + 8, -3 + 8, -7 + 8 + 19, -3 + 8 + 13)
    assert c.box(0, 0) == (0, 0, 12, 10)
    assert c.center == (-7 + 9.0, -3 + 6.0)
    assert c.as_dict() == {"size": [19, 13], "jump": [4, 8], "start": [-7, -3]}
    assert isinstance(c, ReceptiveField)


def test_max_pooling_demo_model_field_contains_the_gradient_support():
    # Max pooling routes the gradient to one input per window: the support is inside the
    # field (and reaches its far corner for some units).
    model = build_demo_model((64, 64, 3), 5, seed=0)
    checked = 0
    for layer in ["conv1", "conv2", "conv3", "conv4"]:
        rf = receptive_field(model, layer)
        for row, col in units_to_check(rf):
            for channel in range(3):
                box = empirical_box(model, layer, row, col, channel=channel)
                if box == (0, 0, 0, 0):  # a ReLU unit that is off here
                    continue
                t, l, b, r = box
                bt, bl, bb, br = rf.box(row, col)
                assert bt <= t and bl <= l and b <= bb and r <= br, (layer, row, col)
                checked += 1
    assert checked >= 40
    conv1 = receptive_field(model, "conv1")
    assert (conv1.size, conv1.jump, conv1.start) == ((5, 5), (1, 1), (-2, -2))
    assert empirical_box(model, "conv1", 10, 20, channel=1) == conv1.box(10, 20)


def test_mixed_precision_model_has_the_same_field():
    reference = receptive_field(nested()[0], "base/ib")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, _ = nested()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert receptive_field(model, "base/ib") == reference


def test_layers_without_spatial_output_raise():
    i = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, name="conv")(i)
    g = L.GlobalAveragePooling2D(name="gap")(x)
    d = L.Dense(3, name="head")(g)
    f = L.Flatten(name="flat")(x)
    model = keras.Model(i, [d, f])
    with pytest.raises(
        ValueError,
        match=r"'gap' \(GlobalAveragePooling2D\) has no spatial output.*choose a layer before it",
    ):
        receptive_field(model, "gap")
    with pytest.raises(
        ValueError, match=r"of layer 'head'.*'gap' \(GlobalAveragePooling2D\) has no spatial output"
    ):
        receptive_field(model, "head")
    with pytest.raises(ValueError, match=r"'flat' \(Flatten\) has no spatial output"):
        receptive_field(model, "flat")
    assert receptive_field(model, "conv").size == (3, 3)


class Frozen(L.Layer):
    """A layer the gradient cannot see through."""

    def call(self, x):
        return tf.stop_gradient(tf.roll(x, 1, axis=1))


def test_unknown_geometry_names_the_layer():
    i = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same", name="conv")(i)
    x = Frozen(name="frozen")(x)
    x = L.Conv2D(4, 3, name="after")(x)
    model = keras.Model(i, x)
    with pytest.raises(
        ValueError,
        match=r"layer 'after'.*'frozen' \(Frozen\) has no known receptive-field rule and its "
        r"geometry could not be measured from input gradients",
    ):
        receptive_field(model, "after")
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        receptive_field(model, "nope")


def test_operation_that_is_not_a_layer_is_reported():
    class WithOp(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = L.Conv2D(2, 3, name="a")
            self.b = L.Conv2D(2, 3, name="b")

        def call(self, x):
            return self.b(tf.image.flip_left_right(self.a(x)) * 3.0)

    model = WithOp()
    model(np.zeros((1, 12, 12, 1), np.float32))
    assert receptive_field(model, "a", input_shape=(12, 12, 1)).size == (3, 3)
    with pytest.raises(ValueError, match="does not come from a Keras layer with known geometry"):
        receptive_field(model, "b", input_shape=(12, 12, 1))


def test_variable_size_model_needs_input_shape():
    i = keras.Input((None, None, 1))
    x = L.Conv2D(2, 3, strides=2, padding="same", name="c")(i)
    model = keras.Model(i, x)
    with pytest.raises(ValueError, match=r"not fixed.*pass input_shape"):
        receptive_field(model, "c")
    # Even and odd sizes pad differently with stride 2 (TensorFlow pads the smaller half first).
    assert receptive_field(model, "c", input_shape=(10, 11, 1)).start == (0, -1)


def test_squeeze_and_excitation_gate_is_a_channel_scale():
    def build(gate):
        i = keras.Input((20, 20, 3))
        x = L.Conv2D(4, 3, strides=2, padding="same", name="a")(i)
        if gate:
            s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
            s = L.Dense(4, activation="sigmoid", name="excite")(s)
            x = L.Multiply(name="scale")([x, s])
        return keras.Model(i, L.Conv2D(2, 3, name="b")(x))

    plain, gated = receptive_field(build(False), "b"), receptive_field(build(True), "b")
    assert (gated.size, gated.jump, gated.start) == ((7, 7), (2, 2), (0, 0))
    assert (plain.size, plain.jump, plain.start) == (gated.size, gated.jump, gated.start)
    assert gated.box(3, 4) == plain.box(3, 4)
    with pytest.raises(
        ValueError, match=r"'squeeze' \(GlobalAveragePooling2D\) has no spatial output"
    ):
        receptive_field(build(True), "excite")


def _preprocessed(preprocess):
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(4, 3, strides=2, kernel_initializer=POS, name="c1")(preprocess(inputs))
    x = L.Conv2D(4, 3, kernel_initializer=POS, name="c2")(x)
    return keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x)))


@pytest.mark.parametrize(
    "preprocess",
    [
        keras.applications.resnet50.preprocess_input,  # caffe: x[..., i] stacked as BGR
        keras.applications.densenet.preprocess_input,  # torch: per-channel arithmetic
        lambda x: keras.ops.stack([x[..., 2] * 2.0, x[..., 1], x[..., 0]], axis=-1),
    ],
    ids=["caffe", "torch", "stack"],
)
def test_preprocessing_inside_the_model_keeps_the_exact_field(preprocess):
    """keras.io fine-tuning puts `preprocess_input` inside the model: picking channels out
    (`x[..., i]`) and stacking them back is pixel-wise, so the field is the one without it."""
    model = _preprocessed(preprocess)
    rf = receptive_field(model, "c2")
    plain = receptive_field(_preprocessed(lambda x: x), "c2")
    assert (rf.size, rf.jump, rf.start, rf.measured) == (plain.size, plain.jump, plain.start, ())
    assert rf.size == (7, 7) and rf.jump == (2, 2)  # 3 + (3 - 1) x 2
    for row, col in [(0, 0), (5, 8), (12, 12)]:  # the input-gradient support, end exclusive
        top, left = rf.start[0] + row * 2, rf.start[1] + col * 2
        assert empirical_box(model, "c2", row, col) == (top, left, top + 7, left + 7)
