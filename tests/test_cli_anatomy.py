"""`cnnvis anatomy MODEL`: the anatomy table of a keras.applications name (random weights, no
download), a Keras 2 `.h5` file and a `.keras` file, by name; errors before any work."""

import os

import keras
import pytest

from keras_cnnvis.cli import main
from keras_cnnvis.model.anatomy import model_anatomy

DATA = os.path.join(os.path.dirname(__file__), "data")
KERAS2 = os.path.join(DATA, "keras2_gray_cnn.h5")
L = keras.layers


def run(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def rows(out):
    """The stage rows of the printed table: (resolution, output, main conv)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stage")) + 2
    end = next(i for i, line in enumerate(lines) if line.startswith("feature map:"))
    return [tuple(line.split()[1:4]) for line in lines[start:end]]


def test_an_application_name_at_a_small_size(capsys):
    rc, out, err = run(["anatomy", "ResNet50", "--input-size", "64", "64"], capsys)
    assert rc == 0, err
    assert out.startswith("Anatomy of model 'resnet50' at 64x64x3")
    assert rows(out) == [
        ("32x32", "conv1_relu", "conv1_conv"),
        ("16x16", "conv2_block3_out", "conv2_block3_2_conv"),
        ("8x8", "conv3_block4_out", "conv3_block4_2_conv"),
        ("4x4", "conv4_block6_out", "conv4_block6_2_conv"),
        ("2x2", "conv5_block3_out", "conv5_block3_2_conv"),
    ]
    assert "feature map: conv5_block3_out" in out
    assert "Grad-CAM layer: conv5_block3_out" in out
    assert "side branches: conv2_block1_0_conv, conv3_block1_0_conv" in out


def test_a_keras2_h5_file(capsys):
    rc, out, err = run(["anatomy", KERAS2], capsys)
    assert rc == 0, err
    assert out.startswith("Anatomy of model 'keras2_gray_cnn' at 20x20x1")
    assert rows(out) == [("20x20", "relu1", "conv1"), ("10x10", "conv2", "conv2")]
    assert "feature map: conv2" in out


def variable_size_model():
    i = keras.Input((None, None, 3))
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="down")(i)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="top")(x)
    return keras.Model(i, L.Dense(2, name="head")(L.GlobalMaxPooling2D(name="gmp")(x)))


def test_a_variable_size_model_needs_and_takes_an_input_size(tmp_path, capsys):
    path = str(tmp_path / "any_size.keras")
    variable_size_model().save(path)
    rc, _, err = run(["anatomy", path], capsys)
    assert rc == 2 and "takes images of any size; pass --input-size HEIGHT WIDTH" in err
    rc, out, err = run(["anatomy", path, "--input-size", "24", "40"], capsys)
    assert rc == 0, err
    assert rows(out) == [("12x20", "top", "top")]
    expected = model_anatomy(keras.models.load_model(path), (24, 40, 3))
    assert expected.table() in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["anatomy", "missing.keras"], "Model file 'missing.keras' does not exist"),
        (["anatomy", KERAS2, "--input-size", "32", "32"], "takes 20x20 images"),
        (["anatomy", "VGG16", "--input-size", "16", "16"], "VGG16: Input size must be at least"),
        (["anatomy", DATA], "is a folder"),
        (["anatomy", __file__], "is not a Keras model file"),
    ],
)
def test_errors_exit_2_with_a_message(argv, message, capsys):
    rc, out, err = run(argv, capsys)
    assert rc == 2 and message in err, err
    assert out == ""


def test_a_model_that_does_not_take_images(tmp_path, capsys):
    i = keras.Input((10,))
    path = str(tmp_path / "dense.keras")
    keras.Model(i, L.Dense(2)(i)).save(path)
    rc, _, err = run(["anatomy", path], capsys)
    assert rc == 2 and "needs images of shape (height, width, channels)" in err


def test_loading_a_model_with_the_onednn_trap_warns_once(tmp_path, capsys, monkeypatch):
    from keras_cnnvis.model import traps

    i = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(i)
    s = L.Conv2D(16, 1, strides=2, name="shortcut")(x)
    x = L.Add(name="add")([L.Conv2D(16, 3, strides=2, padding="same", name="main")(x), s])
    path = str(tmp_path / "residual.keras")
    keras.Model(i, L.Dense(2)(L.GlobalAveragePooling2D()(x))).save(path)
    monkeypatch.setattr(traps, "onednn_enabled", lambda: True)  # as on an AVX-512 VNNI CPU
    with pytest.warns(RuntimeWarning) as seen:
        rc, out, _ = run(["anatomy", path], capsys)
    assert rc == 0 and "feature map: add" in out
    (warning,) = [w for w in seen if "oneDNN" in str(w.message)]
    message = str(warning.message)
    assert message.startswith("cnnvis anatomy: model")
    assert "'shortcut' (Conv2D, 8 channels, strides (2, 2))" in message
    assert "TF_ENABLE_ONEDNN_OPTS=0" in message
