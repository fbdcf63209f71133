"""What the patch tests share: a small model with a nested dilated block and 45 random images
of its input size."""

from __future__ import annotations

import keras
import numpy as np

L = keras.layers


def small_model() -> keras.Model:
    """No ReLU, so activations have no exact ties; a nested block whose dilated units near
    the border see less than their clipped window (taps that land in padding)."""
    inner = keras.Sequential(
        [keras.Input((10, 10, 6)), L.Conv2D(5, 3, padding="same", dilation_rate=2, name="deep")],
        name="block",
    )
    i = keras.Input((22, 21, 3))
    x = L.Conv2D(6, 3, padding="valid", name="first")(i)
    x = L.Conv2D(6, 3, strides=2, padding="same", name="second")(x)
    x = inner(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.5, name="drop")(x)
    return keras.Model(i, L.Dense(3, name="head")(x), name="small")


def seeded_small() -> keras.Model:
    """`small_model` with the weights of seed 3."""
    keras.utils.set_random_seed(3)
    return small_model()


def compiled_small() -> keras.Model:
    """`seeded_small`, compiled for sparse labels."""
    model = seeded_small()
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def random_images() -> np.ndarray:
    """45 uniform random `(22, 21, 3)` images (seed 5)."""
    return np.random.default_rng(5).random((45, 22, 21, 3), dtype=np.float32)
