"""The oneDNN strided 1x1 convolution trap: which layers hit it (nested models included), how
TensorFlow decides whether oneDNN is on, and the warning given once per model."""

import importlib
import os
import warnings

import keras
import pytest

from keras_cnnvis.model.traps import (
    ENV_VAR,
    TrapLayer,
    onednn_default,
    onednn_enabled,
    onednn_trap_layers,
    parse_onednn_setting,
    warn_onednn_trap,
)

L = keras.layers


def residual(shortcut_channels: int = 8, stride: int = 2, kernel: int = 1) -> keras.Model:
    """A small residual net whose shortcut is a 1x1 convolution, nested under a head."""
    i = keras.Input((16, 16, 3))
    x = L.Conv2D(shortcut_channels, 3, padding="same", name="stem")(i)
    a = L.Conv2D(16, 3, strides=stride, padding="same", name="main")(x)
    s = L.Conv2D(16, kernel, strides=stride, padding="same", name="shortcut")(x)
    base = keras.Model(i, L.Add(name="add")([a, s]), name="base")
    j = keras.Input((16, 16, 3))
    y = L.GlobalAveragePooling2D(name="gap")(base(j))
    return keras.Model(j, L.Dense(2, name="head")(y), name="outer")


def caught(fn):
    """Runs `fn` recording every warning (Python's own once-per-place filter off)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = fn()
    return result, [w for w in seen if issubclass(w.category, RuntimeWarning)]


def test_a_strided_1x1_conv_with_few_channels_is_found_through_nesting():
    layers = onednn_trap_layers(residual(8))
    assert layers == [TrapLayer("base/shortcut", "Conv2D", 8, (2, 2))]
    assert str(layers[0]) == "'base/shortcut' (Conv2D, 8 channels, strides (2, 2))"


@pytest.mark.parametrize("channels, stride, kernel", [(16, 2, 1), (32, 2, 1), (8, 1, 1), (8, 2, 3)])
def test_sixteen_channels_stride_one_or_a_wider_kernel_are_safe(channels, stride, kernel):
    assert onednn_trap_layers(residual(channels, stride, kernel)) == []


def test_other_layer_kinds():
    i = keras.Input((16, 16, 3))
    x = L.Conv2DTranspose(3, 1, strides=2, name="up_few")(i)  # its gradient reads 3 channels
    y = L.Conv2DTranspose(16, 1, strides=2, name="up_many")(i)
    z = L.DepthwiseConv2D(1, strides=2, name="depthwise")(i)  # measured safe
    w = L.SeparableConv2D(8, 1, strides=2, name="separable")(i)  # measured safe
    v = L.Conv1D(4, 1, strides=(2,), name="conv1d")(L.Reshape((256, 3))(i))
    model = keras.Model(i, [x, y, z, w, v])
    assert onednn_trap_layers(model) == [
        TrapLayer("up_few", "Conv2DTranspose", 3, (2, 2)),
        TrapLayer("conv1d", "Conv1D", 3, (2,)),
    ]


def test_a_subclassed_model_is_listed_once_built():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.down = L.Conv2D(4, 1, strides=(1, 2), name="down")

        def call(self, x):
            return self.down(x)

    net = Net()
    assert onednn_trap_layers(net) == []  # not built: no kernel to read
    net(keras.ops.zeros((1, 8, 8, 5)))
    assert onednn_trap_layers(net) == [TrapLayer("down", "Conv2D", 5, (1, 2))]


def test_the_warning_names_the_layer_and_the_fix_once_per_model():
    model = residual(8)
    layers, seen = caught(lambda: warn_onednn_trap(model, "cnnvis analyze", enabled=True))
    assert [layer.path for layer in layers] == ["base/shortcut"]
    assert len(seen) == 1
    message = str(seen[0].message)
    assert message.startswith("cnnvis analyze: model 'outer'")
    assert "'base/shortcut' (Conv2D, 8 channels, strides (2, 2))" in message
    assert f"{ENV_VAR}=0" in message and "before TensorFlow is imported" in message
    # The same model again: no second warning (even with Python's filter set to "always").
    layers, seen = caught(lambda: warn_onednn_trap(model, "CNNVisCallback", enabled=True))
    assert len(layers) == 1 and seen == []
    # Another model with the trap warns on its own.
    _, seen = caught(lambda: warn_onednn_trap(residual(4), "CNNVisCallback", enabled=True))
    assert len(seen) == 1 and "4 channels" in str(seen[0].message)


def test_no_warning_without_the_trap_or_with_onednn_off():
    for model, enabled in [(residual(16), True), (residual(8, stride=1), True)]:
        layers, seen = caught(lambda: warn_onednn_trap(model, "x", enabled=enabled))
        assert layers == [] and seen == []
    trapped = residual(8)
    layers, seen = caught(lambda: warn_onednn_trap(trapped, "x", enabled=False))
    assert layers == [] and seen == []
    # Being off once does not use up the warning for when it is on.
    _, seen = caught(lambda: warn_onednn_trap(trapped, "x", enabled=True))
    assert len(seen) == 1


@pytest.mark.parametrize(
    "value, default, expected",
    [
        (None, True, True),
        (None, False, False),
        ("0", True, False),
        ("false", True, False),
        ("FALSE", True, False),
        ("1", False, True),
        ("True", False, True),
        ("", True, True),  # not a value TensorFlow reads: its default stays
        ("yes", False, False),
        ("off", True, True),
    ],
)
def test_the_variable_is_read_as_tensorflow_reads_it(value, default, expected):
    assert parse_onednn_setting(value, default) is expected


def test_the_default_follows_platform_and_cpu():
    vnni = {"fpu", "avx2", "avx512f", "avx512_vnni"}
    assert onednn_default(vnni, "Linux", "x86_64") is True
    assert onednn_default({"avx2", "amx_tile"}, "Linux", "x86_64") is True
    assert onednn_default({"fpu", "avx2", "avx512f"}, "Linux", "x86_64") is False
    assert onednn_default({"neoverse_v1"}, "Linux", "aarch64") is True
    assert onednn_default(set(), "Windows", "AMD64") is True
    assert onednn_default(vnni, "Darwin", "x86_64") is False


def test_onednn_enabled_combines_variable_and_default():
    linux = dict(features={"avx512_bf16"}, system="Linux", machine="x86_64")
    old = dict(features={"avx2"}, system="Linux", machine="x86_64")
    assert onednn_enabled({}, **linux) is True
    assert onednn_enabled({ENV_VAR: "0"}, **linux) is False
    assert onednn_enabled({}, **old) is False
    assert onednn_enabled({ENV_VAR: "1"}, **old) is True


def test_the_rule_agrees_with_tensorflow_in_this_process():
    importlib.import_module("tensorflow")  # TensorFlow's own answer needs it imported
    # TensorFlow read the variable at import; it has not changed since in the test run.
    assert onednn_enabled(dict(os.environ)) is onednn_enabled()
