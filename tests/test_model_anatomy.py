"""model_anatomy on the architectures people fine-tune (keras.applications, random weights,
small inputs, no downloads), on keras.io-style and hand-built models: feature map, stage
outputs, main-path convolutions and side branches by name."""

import keras
import numpy as np
import pytest

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.model import find_layer
from keras_cnnvis.model.anatomy import model_anatomy

A, L = keras.applications, keras.layers


def _op_before(model, name):
    """The name of the operation feeding layer `name` (ConvNeXt's residual sums are `+`
    operations whose numbers depend on how many were built before)."""
    names = [op.name for op in model.operations]
    return names[names.index(name) - 1]


ZOO = {
    "ResNet50": (
        lambda: A.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5),
        "conv5_block3_out",
        ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"],
        "conv5_block3_2_conv",
    ),
    "MobileNetV2": (
        lambda: A.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=5),
        "out_relu",
        [
            "block_1_expand_relu",
            "block_3_expand_relu",
            "block_6_expand_relu",
            "block_13_expand_relu",
        ],
        "block_16_depthwise",
    ),
    "EfficientNetB0": (
        lambda: A.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classes=5),
        "top_activation",
        [
            "block2a_expand_activation",
            "block3a_expand_activation",
            "block4a_expand_activation",
            "block6a_expand_activation",
        ],
        "block7a_dwconv",
    ),
    "ConvNeXtTiny": (
        lambda: A.ConvNeXtTiny(weights=None, input_shape=(64, 64, 3), classes=5),
        None,  # an `+` operation, see below
        None,
        "convnext_tiny_stage_3_block_2_depthwise_conv",
    ),
    "VGG16": (
        lambda: A.VGG16(weights=None, input_shape=(64, 64, 3), classes=5),
        "block5_conv3",
        ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3"],
        "block5_conv3",
    ),
    "DenseNet121": (
        lambda: A.DenseNet121(weights=None, input_shape=(64, 64, 3), classes=5),
        "relu",
        ["conv1_relu", "pool2_conv", "pool3_conv", "pool4_conv"],
        "conv5_block16_2_conv",
    ),
    "Xception": (
        lambda: A.Xception(weights=None, input_shape=(71, 71, 3), classes=5),
        "block14_sepconv2_act",
        None,  # residual sums are auto-named Add layers
        "block14_sepconv2",
    ),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_feature_map_and_stages(name):
    build, feature_map, stages, last_conv = ZOO[name]
    model = build()
    anatomy = model_anatomy(model)
    if name == "ConvNeXtTiny":
        feature_map = _op_before(model, "convnext_tiny_head_gap")
        assert type(find_layer(model, feature_map).layer).__name__ == "Add"
    assert anatomy.feature_map == feature_map
    outs = anatomy.stage_outputs
    assert outs[-1] == feature_map
    if stages is not None:
        assert outs[:-1] == stages
    assert anatomy.stage_convs[-1] == last_conv  # the nearest spatial kernel (not a 1x1)
    sizes = [anatomy.resolution(p) for p in outs]
    assert all(min(s) >= 2 for s in sizes), sizes
    assert all(a[0] >= b[0] and a[1] >= b[1] for a, b in zip(sizes, sizes[1:])), sizes
    side = set(anatomy.side_branches)
    assert not side & set(outs) and not side & set(anatomy.stage_convs)
    if name == "EfficientNetB0":  # every squeeze-and-excitation branch is a side branch
        se = [l.name for l in model.layers if "_se_" in l.name and "excite" not in l.name]
        assert len(se) == 64 and side == set(se)  # squeeze, reshape, reduce, expand
    if name == "ResNet50":  # the shortcut projections (ResNet's main path strides in 1x1s)
        shortcuts = [l.name for l in model.layers if l.name.endswith("block1_0_conv")]
        assert len(shortcuts) == 4 and side == set(shortcuts)
    if name == "Xception":  # the 1x1 strided shortcut convolutions
        shortcuts = [
            l.name
            for l in model.layers
            if isinstance(l, L.Conv2D) and l.kernel_size == (1, 1) and l.strides == (2, 2)
        ]
        assert len(shortcuts) == 4 and side == set(shortcuts)
    text = anatomy.table()
    assert feature_map in text and f"feature map: {feature_map}" in text


def test_nested_transfer_model_keras_io_style():
    base = A.MobileNetV2(weights=None, input_shape=(96, 96, 3), include_top=False)
    base.trainable = False
    i = keras.Input((96, 96, 3))
    x = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1)], name="augment")(i)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = L.Dropout(0.2)(L.GlobalAveragePooling2D()(x))
    model = keras.Model(i, L.Dense(1)(x))
    anatomy = model_anatomy(model)
    prefix = base.name + "/"
    assert anatomy.feature_map == prefix + "out_relu"
    assert anatomy.stage_outputs[0] == prefix + "block_1_expand_relu"
    assert find_layer(model, anatomy.feature_map).layer is base.get_layer("out_relu")


def test_demo_sequential_subclassed_and_unet():
    demo = model_anatomy(build_demo_model((64, 64, 3), 5))
    assert demo.feature_map == "conv4" and demo.stage_outputs == [
        "relu1",
        "conv2",
        "conv3",
        "conv4",
    ]
    seq = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, activation="relu", name="c1"),
            L.MaxPooling2D(name="p"),
            L.Conv2D(8, 3, activation="relu", name="c2"),
            L.MaxPooling2D(name="p2"),
            L.Flatten(),
            L.Dense(3),
        ]
    )
    # trailing pooling that only downsamples is skipped: the feature map is c2
    assert model_anatomy(seq).feature_map == "c2"

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = L.Conv2D(4, 3, name="a")
            self.b = L.Conv2D(4, 3, strides=2, name="b")
            self.gap = L.GlobalAveragePooling2D()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(self.gap(keras.ops.relu(self.b(self.a(x)))))

    sub = Sub()
    sub(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="Cannot tell the input shape"):
        model_anatomy(sub)
    anatomy = model_anatomy(sub, (16, 16, 3))
    assert anatomy.feature_map == "b" and anatomy.stage_outputs == ["a", "b"]

    i = keras.Input((32, 32, 3))
    e1 = L.Conv2D(8, 3, padding="same", activation="relu", name="e1")(i)
    e2 = L.Conv2D(16, 3, padding="same", activation="relu", name="e2")(L.MaxPooling2D()(e1))
    cat = L.Concatenate(name="cat")([L.UpSampling2D(name="up")(e2), e1])
    d1 = L.Conv2D(8, 3, padding="same", activation="relu", name="d1")(cat)
    unet = keras.Model(i, L.Conv2D(3, 1, activation="softmax", name="seg")(d1))
    anatomy = model_anatomy(unet)
    assert anatomy.feature_map == "d1"  # the input of the per-pixel classifier
    assert anatomy.stage_outputs == ["e1", "e2", "d1"]  # encoder, bottleneck, decoder


def test_grad_cam_without_a_layer_is_grad_cam_at_the_feature_map():
    from keras_cnnvis.attribution import grad_cam, layer_cam

    model = A.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5)
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32) * 255
    default = grad_cam(model, x, target=1)
    np.testing.assert_allclose(default, grad_cam(model, x, target=1, layer="conv5_block3_out"))
    assert np.abs(default - grad_cam(model, x, target=1, layer="conv5_block3_3_conv")).max() > 0
    np.testing.assert_allclose(
        layer_cam(model, x, target=1), layer_cam(model, x, target=1, layer="conv5_block3_out")
    )
    assert find_layer(model, "feature_map").path == "conv5_block3_out"
