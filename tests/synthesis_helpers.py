"""Small models shared by the synthesis tests (fixed seeds, random weights, no download)."""

import keras


def tiny_cnn(size: int = 16, n_classes: int = 3, seed: int = 0) -> keras.Model:
    """conv_a (4 ch) -> conv_b (6 ch) -> global average pool -> softmax dense."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(i)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="dense")(x)
    return keras.Model(i, out, name="tiny")


def random_vgg(seed: int = 0) -> keras.Model:
    """A random-weight VGG-style feature network taking any image size."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((None, None, 3))
    x = i
    for b, ch in enumerate((16, 32, 64), start=1):
        x = keras.layers.Conv2D(ch, 3, padding="same", activation="relu", name=f"block{b}_conv1")(x)
        x = keras.layers.Conv2D(ch, 3, padding="same", activation="relu", name=f"block{b}_conv2")(x)
        x = keras.layers.AveragePooling2D(2, name=f"block{b}_pool")(x)
    return keras.Model(i, x, name="random_vgg")
