"""The demo: a small CNN trained on built-in data with the keras-cnnvis callbacks attached.

`cnnvis demo` runs `run_demo`; tests and examples reuse `build_demo_model`.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import keras


def build_demo_model(
    input_shape: Sequence[int] = (64, 64, 3), n_classes: int = 5, seed: int = 0
) -> keras.Model:
    """A small 4-conv CNN: 5x5 first-layer filters (big enough to show structure).

    Layers: `conv1` (16 filters, 5x5, followed by `bn1` and a `relu1` layer), `conv2` ..
    `conv4` (ReLU as activation argument) with max pooling between them,
    `global_pool` (global max pooling), Dense `features` (64, ReLU) and Dense
    `predictions` (softmax). About 94% validation accuracy on `shapes` after 8 epochs.

    Example:

    ```python
    model = build_demo_model((64, 64, 3), 5)
    ```

    Args:
        input_shape: `(height, width, channels)`. Defaults to `(64, 64, 3)`.
        n_classes: output classes. Defaults to 5.
        seed: weight-initialisation seed. Defaults to 0.

    Returns:
        A compiled Functional `keras.Model` (Adam, sparse categorical cross-entropy).
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(tuple(input_shape), name="image")
    # A small first-layer initialisation behind batch normalisation: learning speed does
    # not depend on conv1's scale, so within a few epochs the learned structure (colour
    # blobs, edges) dominates the initial noise instead of hiding under it.
    x = keras.layers.Conv2D(
        16,
        5,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
        name="conv1",
    )(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.MaxPooling2D(name="pool3")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    # Global max pooling: the object is small and anywhere; averaging dilutes it.
    x = keras.layers.GlobalMaxPooling2D(name="global_pool")(x)
    x = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="demo_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_demo_model(
    model: keras.Model,
    x,
    y,
    epochs: int = 8,
    callbacks=None,
    validation_data=None,
    verbose: int = 0,
) -> dict:
    """Fits the demo model with the demo's batch size; returns the Keras history dict."""
    history = model.fit(
        x,
        y,
        validation_data=validation_data,
        epochs=epochs,
        batch_size=32,
        callbacks=callbacks,
        verbose=verbose,
    )
    return history.history


def demo_callbacks(
    logdir: str, x_val, y_val, masks_val=None, class_names=None, expensive_every: int = 2
) -> list:
    """The demo's keras-cnnvis callbacks: `CNNVisCallback` with every monitor.

    The demo is a showcase: it runs the expensive monitors every 2 epochs (instead of 5)
    and without a time budget (`budget=None`), so its 3-second epochs show every monitor
    evolving. At the defaults (budget 15%) the same fit thins the records instead.
    """
    from keras_cnnvis.callbacks import CNNVisCallback

    return [
        CNNVisCallback(
            logdir,
            validation_data=(x_val, y_val),
            masks=masks_val,
            class_names=class_names,
            expensive_every=expensive_every,
            budget=None,
        )
    ]


def run_demo(
    logdir: str = "runs/demo",
    epochs: int = 8,
    dataset: str = "shapes",
    n: int = 2000,
    size: int = 64,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Trains the demo CNN with the callbacks and writes TensorBoard logs.

    Writes Keras's own TensorBoard logs to `<logdir>/train` and `<logdir>/validation`,
    keras-cnnvis records to `<logdir>/cnnvis`, and the trained model to
    `<logdir>/model.keras`.

    Args:
        logdir: where logs and the model go. Defaults to `"runs/demo"`.
        epochs: training epochs. Defaults to 8.
        dataset: `"shapes"`, `"digits"`, `"mnist"`, `"fashion_mnist"`, `"cifar10"` or a
            folder of class subfolders. Defaults to `"shapes"`.
        n: examples to use (train + validation). Defaults to 2000.
        size: image size for `shapes` and folders. Defaults to 64.
        seed: data and initialisation seed. Defaults to 0.
        verbose: Keras progress-bar verbosity. Defaults to 1.

    Returns:
        A dict with `history`, `model_path`, `logdir`, `seconds`, `val_accuracy`.
    """
    from keras_cnnvis import datasets

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    start = time.perf_counter()
    images, labels, class_names = datasets.load(dataset, n=n, size=size, seed=seed)
    n_val = max(len(class_names), len(images) // 5)
    x_train, y_train = images[n_val:], labels[n_val:]
    x_val, y_val = images[:n_val], labels[:n_val]
    masks = None
    if dataset == "shapes":
        _, _, all_masks = datasets.shapes(n, size=size, seed=seed)
        masks = all_masks[:n_val]
    model = build_demo_model(images.shape[1:], len(class_names), seed=seed)
    os.makedirs(logdir, exist_ok=True)
    callbacks = [keras.callbacks.TensorBoard(logdir)] + demo_callbacks(
        logdir, x_val, y_val, masks, class_names
    )
    history = train_demo_model(model, x_train, y_train, epochs, callbacks, (x_val, y_val), verbose)
    model_path = os.path.join(logdir, "model.keras")
    model.save(model_path)
    return {
        "history": history,
        "model_path": model_path,
        "logdir": logdir,
        "seconds": time.perf_counter() - start,
        "val_accuracy": float(history["val_accuracy"][-1]),
        "class_names": list(class_names),
    }
