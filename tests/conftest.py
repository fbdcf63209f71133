"""Shared pytest set-up: quiet TensorFlow, deterministic seeds, small shared fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
