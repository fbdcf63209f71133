"""Shared pytest set-up: quiet TensorFlow, deterministic seeds, small shared fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TF 2.21's oneDNN kernels crash in the weight gradient of a strided 1x1 convolution with
# fewer than 16 input channels (keras_cnnvis.model.traps warns users): no test trains one.

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(scope="session")
def shapes_small():
    """400 shapes images (64x64), labels and masks."""
    from keras_cnnvis import datasets

    return datasets.shapes(400, size=64, seed=0)


@pytest.fixture(scope="session")
def trained_demo():
    """The demo CNN trained on `shapes` once per test session (shared by all tests).

    Returns a dict: model, x_train, y_train, x_val, y_val, masks_val, class_names,
    val_accuracy. Tests must not change the model's weights (clone it if needed).
    """
    import numpy as np

    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, masks = datasets.shapes(1600, size=64, seed=0)
    n_val = 300
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    history = train_demo_model(model, images[n_val:], labels[n_val:], epochs=8)
    x_val, y_val = images[:n_val], labels[:n_val]
    acc = float(np.mean(np.argmax(model.predict(x_val, verbose=0), -1) == y_val))
    return {
        "model": model,
        "x_train": images[n_val:],
        "y_train": labels[n_val:],
        "x_val": x_val,
        "y_val": y_val,
        "masks_val": masks[:n_val],
        "class_names": list(datasets.SHAPE_CLASSES),
        "val_accuracy": acc,
        "history": history,
    }


@pytest.fixture(scope="session")
def shots(tmp_path_factory):
    """Where the browser tests save their screenshots: $CNNVIS_SCREENSHOT_DIR, else a temporary
    directory."""
    directory = os.environ.get("CNNVIS_SCREENSHOT_DIR") or str(tmp_path_factory.mktemp("shots"))
    os.makedirs(directory, exist_ok=True)
    return directory
