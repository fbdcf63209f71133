"""Tiny models, data and light CNNVisCallback options shared by the robustness tests and their
subprocess scripts (16-pixel shapes images, two convolutions: every monitor runs in seconds).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_cnnvis import datasets

CLASSES = list(datasets.SHAPE_CLASSES)  # 5 classes
CONVS = ["conv_a", "conv_b"]

# Heavy defaults turned down: PCA only (no t-SNE), 2 class-visualisation steps, 4 IG steps.
LIGHT = {
    "embedding": {"methods": ("pca",)},
    "classes": {"steps": 2},
    "saliency": {"steps": 4},
    "robustness": {"severities": (1,), "epsilons": (), "n_probes": 1},
}


def tiny_cnn(
    shape: tuple = (16, 16, 3),
    n_classes: int = 5,
    preprocessing: keras.layers.Layer | None = None,
    seed: int = 0,
    compile: bool = True,
) -> keras.Model:
    """conv_a (4 filters) -> pool -> conv_b (6) -> global average -> features (8) ->
    predictions (softmax, float32 even under a mixed-precision policy)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape, name="image")
    x = inputs if preprocessing is None else preprocessing(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(
        n_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    model = keras.Model(inputs, outputs, name="tiny_cnn")
    if compile:
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def shapes_data(n: int = 64, n_val: int = 24, seed: int = 0):
    """16x16 shapes: `(x_train, y_train), (x_val, y_val, masks_val)`."""
    x, y, masks = datasets.shapes(n, size=16, seed=seed)
    x, y = x.astype(np.float32), y.astype(np.int64)
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val], masks[:n_val])
