"""`cnnvis analyze MODEL --data DATA --logdir DIR` in-process: a Keras 2 `.h5` model (shipped,
written by tf-keras) and a Keras 3 `.h5` written here, on an image folder written here; the
records read back equal those CNNVisCallback writes at step 0 of a real fit, and the cnnvis
tab's routes serve them. Every bad input is refused before any work."""

import contextlib
import io
import json
import os
import warnings

import cv2
import h5py
import keras
import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis import datasets
from keras_cnnvis.analysis import prepare
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.cnnvis import EXPENSIVE
from keras_cnnvis.callbacks.monitors import REGISTRY
from keras_cnnvis.cli import main
from keras_cnnvis.rendering.image import to_uint8
from tensorboard_plugin_cnnvis import reader
from test_plugin_routes import get_json, make_client, url

KERAS2 = os.path.join(os.path.dirname(__file__), "data", "keras2_gray_cnn.h5")
CLASSES = ["circle", "square", "triangle"]
# Records that prove each monitor wrote (tag prefixes; the layers come from the anatomy).
MONITOR_TAGS = {
    "filters": "json/filters/",
    "health": "json/health/",
    "activations": "json/activations/",
    "grad_cam": "json/attribution/grad_cam",
    "confusion": "json/confusion/matrix",
    "saliency": "json/attribution/saliency",
    "occlusion": "json/attribution/occlusion",
    "patches": "json/patches/",
    "embedding": "json/embedding/",
    "neighbors": "neighbors/feature",
    "classes": "json/synthesis/classes",
    "robustness": "json/robustness/",
}
LIGHT = ["--n-probes", "3", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four 32x32 RGB PNGs per class of the built-in shapes, in class subfolders."""
    root = tmp_path_factory.mktemp("images")
    images, labels, _ = datasets.shapes(60, size=32, seed=3)
    for c, name in enumerate(CLASSES):
        os.makedirs(root / name)
        for i, image in enumerate(images[labels == c][:4]):
            cv2.imwrite(str(root / name / f"{i}.png"), to_uint8(image[..., ::-1]))
    return str(root)


@pytest.fixture(scope="module")
def analysed(folder, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("analysis")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rc = main(["analyze", KERAS2, "--data", folder, "--logdir", str(logdir), *LIGHT])
    assert rc == 0
    # Keras 2 configs list the one input; the loader gives it as a tensor, so Keras 3 does
    # not warn on every call of the model.
    assert not [w for w in seen if "structure of `inputs`" in str(w.message)]
    return str(logdir), read_run(str(logdir / "cnnvis")), out.getvalue()


def at_step_0(run):
    """Tag -> the value recorded at step 0 (tags without one left out)."""
    return {tag: r.value for tag, records in run.items() for r in records if r.step == 0}


def timeless(payload):
    """A JSON record without the wall time some records carry."""
    return {k: v for k, v in payload.items() if k != "seconds"}


def test_every_monitor_writes_its_records_at_step_0(analysed):
    _, run, out = analysed
    assert {r.step for records in run.values() for r in records} == {0}
    for monitor, prefix in MONITOR_TAGS.items():
        assert any(tag.startswith(prefix) for tag in run), monitor
    # The summary lists every registered monitor with the seconds of its record.
    timed = {line.split()[0] for line in out.splitlines() if line.rstrip().endswith(" s")}
    assert timed == set(REGISTRY)
    assert "skipped" not in out and "FAILED" not in out
    assert "Analysed model 'keras2_gray_cnn' on 12 images (preprocess unit)" in out


def test_the_records_equal_those_of_cnnvis_callback_at_step_0(analysed, folder, tmp_path):
    _, run, _ = analysed
    model = keras.models.load_model(KERAS2, compile=False)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y, names, _ = prepare(model, folder)
    callback = CNNVisCallback(
        str(tmp_path),
        validation_data=(x, y),
        class_names=names,
        n_probes=3,
        max_examples=len(x),
        budget=None,
        on_error="raise",
        # Before training only the cheap monitors record, and Grad-CAM's faithfulness
        # scores wait for the expensive schedule, unless asked.
        options={
            **{name: {"log_initial": True} for name in EXPENSIVE},
            "grad_cam": {"faithfulness": True},
        },
    )
    model.fit(x, y, epochs=1, batch_size=len(x), verbose=0, callbacks=[callback])
    reference = at_step_0(read_run(str(tmp_path / "cnnvis")))
    ours = at_step_0(run)
    assert set(ours) == set(reference)
    for tag, value in reference.items():
        if tag.startswith("json/") and not tag.startswith(("json/embedding/tsne",)):
            assert timeless(ours[tag]) == timeless(value), tag  # t-SNE below: it has threads
    layout = np.array(ours["json/embedding/tsne"]["points"])
    np.testing.assert_allclose(layout, reference["json/embedding/tsne"]["points"], atol=1e-3)
    # The filters of the Keras 2 file are its stored weights, drawn as CNNVisCallback draws them.
    np.testing.assert_array_equal(ours["filters/conv1"][0], reference["filters/conv1"][0])
    with h5py.File(KERAS2) as f:
        stored = f["model_weights/conv1/conv1/kernel:0"][()]
    fresh = keras.models.load_model(KERAS2, compile=False)  # `model` has trained an epoch
    np.testing.assert_array_equal(fresh.get_layer("conv1").kernel.numpy(), stored)


def test_the_confusion_matrix_counts_the_models_predictions(analysed, folder):
    _, run, _ = analysed
    model = keras.models.load_model(KERAS2, compile=False)
    x, y, _, _ = prepare(model, folder)
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)
    matrix = np.zeros((3, 3), int)
    np.add.at(matrix, (y, predicted), 1)
    confusion = at_step_0(run)["json/confusion/matrix"]
    assert confusion["matrix"] == matrix.tolist() and confusion["class_names"] == CLASSES
    assert matrix.sum() == 12


def test_the_cnnvis_tab_serves_the_analysis(analysed):
    logdir, run, _ = analysed
    client = make_client(logdir, {"cnnvis": 0, "images": 0})
    assert get_json(client, "/data/plugins_listing")["cnnvis"]["enabled"] is True
    (listed,) = get_json(client, "runs")["runs"]
    assert listed["run"] == "cnnvis"
    written = {reader.tag_kind(tag, records[0].plugin) for tag, records in run.items()}
    assert set(listed["kinds"]) == written - {None}
    assert set(listed["kinds"]) >= {
        "filters",
        "health",
        "activations",
        "attribution",
        "confusion",
        "patches",
        "embedding",
        "neighbors",
        "synthesis",
        "probes",
    }
    for tag, records in run.items():
        if tag.startswith("json/") and tag.split("/")[1] in reader.KINDS:
            assert get_json(client, "steps", run="cnnvis", tag=tag)["steps"] == [0]
            assert get_json(client, "data", run="cnnvis", tag=tag, step=0) == json.loads(
                json.dumps(records[0].value)
            )
    response = client.get(url("image", run="cnnvis", tag="filters/conv1", step=0, index=0))
    assert response.status_code == 200
    served = cv2.imdecode(np.frombuffer(response.get_data(), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(served, run["filters/conv1"][0].value[0])


def test_a_keras3_h5_file_and_npz_data(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    i = keras.Input((24, 24, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(i)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(h)
    out = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(h))
    path = str(tmp_path / "m.h5")
    keras.Model(i, out).save(path)
    with h5py.File(path) as f:  # Keras 3 writes the legacy HDF5 layout
        assert "model_config" in f.attrs and "layer_names" in f["model_weights"].attrs
    images, labels, _ = datasets.shapes(10, size=16, seed=0)
    np.savez(tmp_path / "d.npz", x=np.round(images * 255).astype(np.uint8), y=labels % 2)
    argv = ["analyze", path, "--data", str(tmp_path / "d.npz"), "--logdir", str(tmp_path / "l")]
    rc = main(argv + ["--include", "filters", "grad_cam", "confusion", *LIGHT])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, captured.err
    assert "on 10 images (preprocess unit)" in out and "cnnvis board" in out
    run = read_run(str(tmp_path / "l" / "cnnvis"))
    assert {t.split("/")[1] for t in run if t.startswith("json/")} == {
        "filters",
        "attribution",
        "confusion",
    }
    matrix = np.array(at_step_0(run)["json/confusion/matrix"]["matrix"])
    assert matrix.sum() == 10 and matrix.sum(axis=1).tolist() == np.bincount(labels % 2).tolist()
    # Images without labels: the monitors that need labels are skipped, saying why.
    np.save(tmp_path / "d.npy", images)
    argv = ["analyze", path, "--data", str(tmp_path / "d.npy"), "--logdir", str(tmp_path / "u")]
    assert main(argv + ["--include", "filters", "confusion", *LIGHT]) == 0
    out = capsys.readouterr().out
    assert "  confusion  skipped: the data has no labels of the model's classes" in out
    unlabelled = read_run(str(tmp_path / "u" / "cnnvis"))
    assert {t.split("/")[1] for t in unlabelled if t.startswith("json/")} == {"filters"}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: ["missing.h5", "shapes"], "Model file 'missing.h5' does not exist"),
        (lambda t: [KERAS2, "no_such_set"], "Unknown --data 'no_such_set'"),
        (lambda t: [KERAS2, KERAS2], "Cannot read --data"),
        (lambda t: [KERAS2, "shapes", "--preprocess", "caffe"], "Unknown preprocessing"),
        (lambda t: [KERAS2, "shapes", "--include", "gradcam"], "Unknown monitors ['gradcam']"),
        (lambda t: [t["dense"], "shapes"], "needs images of shape (height, width, channels)"),
        (lambda t: [KERAS2, t["two_channels"]], "the data images have 2 channels"),
        (lambda t: [KERAS2, "shapes", "--input-size", "8", "8"], "takes 20x20 images"),
    ],
)
def test_bad_inputs_are_refused_before_any_work(make, message, tmp_path, capsys):
    i = keras.Input((10,))
    keras.Model(i, keras.layers.Dense(2)(i)).save(tmp_path / "dense.keras")
    np.save(tmp_path / "two.npy", np.zeros((3, 20, 20, 2), np.float32))
    paths = {"dense": str(tmp_path / "dense.keras"), "two_channels": str(tmp_path / "two.npy")}
    model, data, *more = make(paths)
    logdir = tmp_path / "logs"
    rc = main(["analyze", model, "--data", data, "--logdir", str(logdir), *more, "--quiet"])
    captured = capsys.readouterr()
    assert rc == 2 and message in captured.err, captured.err
    assert not logdir.exists() and captured.out == ""
