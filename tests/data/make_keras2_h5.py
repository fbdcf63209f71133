"""Writes tests/data/keras2_gray_cnn.h5: a small grayscale CNN saved by Keras 2 (tf-keras), the
legacy HDF5 format of models trained before Keras 3. Kept in the repository so the tests need
neither tf-keras nor a download; to remake it (the weights come from seed 0):

    pip install --target /tmp/tfk --no-deps "tf-keras==2.21.0"
    PYTHONPATH=/tmp/tfk TF_ENABLE_ONEDNN_OPTS=0 python tests/data/make_keras2_h5.py
"""

import os

import numpy as np
import tf_keras as keras

HERE = os.path.dirname(os.path.abspath(__file__))


def build() -> keras.Model:
    """20x20x1 -> conv (6, 3x3) -> batch norm -> ReLU -> max pool -> conv (8, 3x3, ReLU)
    -> global average pool -> 3-way softmax."""
    keras.utils.set_random_seed(0)
    i = keras.Input((20, 20, 1), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(i)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(i, out, name="keras2_gray_cnn")
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 20, 20, 1)), rng.integers(0, 3, 32), epochs=1, verbose=0)
    return model


if __name__ == "__main__":
    path = os.path.join(HERE, "keras2_gray_cnn.h5")
    build().save(path, include_optimizer=False)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) with Keras {keras.__version__}")
