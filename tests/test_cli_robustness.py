"""`cnnvis robustness MODEL --data DATA`: the printed table equals the core on the same images,
the records and the heatmap PNG, 0-255 data through the model's own Rescaling, and errors."""

import cv2
import keras
import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis import inputs
from keras_cnnvis.cli import main
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.robustness import render_heatmap
from keras_cnnvis.robustness import adversarial_accuracy, corruption_accuracy

L = keras.layers
NAMES = ["red", "green", "blue"]
ARGS = ["--corruptions", "gaussian_noise", "contrast", "--severities", "1", "3", "5"]
ARGS += ["--n", "30", "--epsilons", "8", "--n-adversarial", "9", "--pgd-steps", "3"]


def colour_data(n=90, seed=1):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.random((n, 16, 16, 3), dtype=np.float32) * 0.4
    x[np.arange(n), :, :, y] += 0.5
    return x, y


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small classifier of the bright colour channel, trained and saved, and its data as
    .npz files: [0, 1] floats and 0..255 bytes (for a copy with a Rescaling layer)."""
    root = tmp_path_factory.mktemp("robustness_cli")
    x, y = colour_data()
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    h = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(i))
    model = keras.Model(i, L.Dense(3, activation="softmax")(h), name="colours")
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=15, verbose=0)
    model.save(root / "unit.keras")
    j = keras.Input((16, 16, 3))
    rescaled = keras.Model(j, model(L.Rescaling(1 / 255)(j)), name="colours_255")
    rescaled.save(root / "pixels.keras")
    np.savez(root / "unit.npz", x=x, y=y, class_names=np.array(NAMES))
    np.savez(root / "bytes.npz", x=np.round(x * 255).astype(np.uint8), y=y)
    np.save(root / "unlabelled.npy", x)
    return root, model, x, y


def table_rows(text):
    rows = {}
    for line in text.splitlines():
        parts = line.rsplit(None, 4)
        if len(parts) == 5 and parts[0] in ("gaussian_noise", "contrast", "mean over corruptions"):
            rows[parts[0]] = [float(v) for v in parts[1:]]
    return rows


def test_table_records_and_png_equal_the_core(saved, tmp_path, capsys):
    root, model, x, y = saved
    out = tmp_path / "heat.png"
    argv = ["robustness", str(root / "unit.keras"), "--data", str(root / "unit.npz"), *ARGS]
    assert main(argv + ["--logdir", str(tmp_path / "logs"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "on 30 images" in text and "(preprocess unit)" in text
    pick = inputs.balanced_indices(y, 30, seed=0)  # the images the command uses
    table = corruption_accuracy(model, x[pick], y[pick], ["gaussian_noise", "contrast"], [1, 3, 5])
    rows = table_rows(text)
    for name, row in zip(table.corruptions, table.accuracy):
        np.testing.assert_allclose(rows[name], [table.clean, *row], atol=5e-4)
    np.testing.assert_allclose(rows["mean over corruptions"][1:], table.by_severity(), atol=5e-4)
    idx = inputs.balanced_indices(y[pick], 9, seed=0)
    pgd = adversarial_accuracy(model, x[pick][idx], y[pick][idx], [0, 8 / 255], steps=3)
    assert f"eps 0/255: {pgd[0]:.3f}, eps 8/255: {pgd[1]:.3f}." in text
    run = read_run(str(tmp_path / "logs" / "cnnvis"))
    record = run["json/robustness/heatmap"]
    assert [r.step for r in record] == [0]
    np.testing.assert_allclose(record[0].value["accuracy"], table.accuracy)
    assert run["json/robustness/examples"][0].value["class_names"] == NAMES  # from the .npz
    assert len(run["robustness/examples"][0].value) == 4 * 7
    png = cv2.imread(str(out))[..., ::-1]
    expected = render_heatmap(table.accuracy, table.corruptions, table.severities, table.clean)
    np.testing.assert_array_equal(png, image.to_uint8(expected))


def test_bytes_through_the_models_rescaling_give_the_same_table(saved, capsys):
    root, _, _, _ = saved
    unit = ["robustness", str(root / "unit.keras"), "--data", str(root / "unit.npz"), *ARGS]
    assert main(unit) == 0
    first = table_rows(capsys.readouterr().out)
    pixels = ["robustness", str(root / "pixels.keras"), "--data", str(root / "bytes.npz"), *ARGS]
    assert main(pixels) == 0
    text = capsys.readouterr().out
    assert "(preprocess pixels)" in text  # read from the Rescaling layer
    # The same images up to 8-bit rounding: the same table within one image of 30.
    rows = table_rows(text)
    assert set(rows) == set(first) == {"gaussian_noise", "contrast", "mean over corruptions"}
    for name, row in rows.items():
        np.testing.assert_allclose(row, first[name], atol=1 / 30 + 1e-3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "{root}/unlabelled.npy"], "has no labels of the model's classes"),
        (["--data", "{root}/unit.npz", "--corruptions", "blurr"], "Unknown corruption 'blurr'"),
        (["--data", "{root}/unit.npz", "--severities", "7"], "severity must be from 1 to 5"),
        (["--data", "{root}/missing.npz"], "Unknown --data"),
        (["--data", "{root}/unit.npz", "--n", "0"], "--n must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(saved, capsys, extra, message):
    root, _, _, _ = saved
    argv = ["robustness", str(root / "unit.keras")] + [a.format(root=root) for a in extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_is_refused_before_loading(capsys):
    assert main(["robustness", "nowhere.keras", "--data", "shapes"]) == 2
    assert "Model file 'nowhere.keras' does not exist" in capsys.readouterr().err
