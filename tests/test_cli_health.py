"""`cnnvis health`: the table in the terminal and the PNG report for a saved model."""

import cv2
import keras
import numpy as np
import pytest

from keras_cnnvis.cli import main
from keras_cnnvis.cli.health import probe_images


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    i = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="c1")(i)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2", trainable=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(i, keras.layers.Dense(3, name="out")(x))
    bias = np.zeros(8, np.float32)
    bias[2] = -1000.0  # filter 2 can never fire
    model.get_layer("c1").bias.assign(bias)
    path = tmp_path_factory.mktemp("model") / "small.keras"
    model.save(path)
    return str(path)


def test_table_and_png_report(saved_model, tmp_path, capsys):
    out = tmp_path / "report.png"
    assert main(["health", saved_model, "--data", "shapes", "--n", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "(3 layers, 8 probe images)" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    rows = {line.split()[0]: line for line in lines[header + 1 : header + 4]}
    assert set(rows) == {"c1", "c2", "out"}
    assert rows["c1"].split()[1:5] == ["Conv2D", "5x5", "8", "8/8"]  # untrained: all noise-like
    assert "dead units: 1/8" in rows["c1"] and "noise-like: not converged" in rows["c1"]
    assert rows["c2"].rstrip().endswith("frozen; no smooth structure (3x3: weak evidence)")
    assert "no initial weights: drift from initialisation not measured" in text
    assert "Non-converged: c1" in text
    png = cv2.imread(str(out))
    assert png is not None and png.shape[1] == 720
    # The dead filter's tile is framed in blue (BGR 255, 64, 0) in the c1 grid.
    assert (np.abs(png.astype(int) - [255, 64, 0]).sum(axis=-1) < 30).sum() > 40


def test_digits_are_converted_for_an_rgb_model_and_no_data_skips_activity(saved_model, capsys):
    images = probe_images("digits", (32, 32, 3), 5)
    assert images.shape == (5, 32, 32, 3) and np.array_equal(images[..., 0], images[..., 2])
    assert main(["health", saved_model, "--data", "none", "--out", ""]) == 0
    text = capsys.readouterr().out
    assert "(3 layers)" in text and "no probe data: dead and saturated units not scored" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["health", "missing.keras"], "Model file 'missing.keras' does not exist"),
        (["health", "MODEL", "--data", "mnist_typo"], "Unknown --data 'mnist_typo'"),
        (["health", "MODEL", "--layers", "gap_z"], "No layer named 'gap_z'"),
    ],
)
def test_errors_exit_2_with_a_message(saved_model, capsys, argv, message):
    argv = [saved_model if a == "MODEL" else a for a in argv]
    assert main(argv + ["--out", ""]) == 2
    assert message in capsys.readouterr().err
