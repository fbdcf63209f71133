"""Small pieces the callback tests share: a 16x16 two-conv model, random data, a callback that
records which epochs began, and what each monitor of CNNVisCallback is and writes."""

from __future__ import annotations

import keras
import numpy as np

# CNNVisCallback's monitors in the order it builds them: the prefix of the tags each one writes,
# and its callback class.
MONITOR_TAGS = {
    "filters": "filters/",
    "health": "json/health",
    "activations": "activations/",
    "grad_cam": "attribution/grad_cam",
    "confusion": "confusion/matrix",
    "saliency": "attribution/saliency",
    "occlusion": "attribution/occlusion",
    "patches": "patches/",
    "embedding": "embedding/",
    "neighbors": "neighbors/",
    "classes": "synthesis/classes",
    "network": "json/network/overview",
    "robustness": "json/robustness/heatmap",
}
MONITOR_CALLBACKS = {
    "filters": "FilterGridCallback",
    "health": "FilterHealthCallback",
    "activations": "ActivationMapsCallback",
    "grad_cam": "GradCAMCallback",
    "confusion": "ConfusionMatrixCallback",
    "saliency": "SaliencyCallback",
    "occlusion": "OcclusionCallback",
    "patches": "MaxActivatingPatchesCallback",
    "embedding": "EmbeddingCallback",
    "neighbors": "NearestNeighborsCallback",
    "classes": "ClassVisualizationCallback",
    "network": "NetworkCallback",
    "robustness": "RobustnessCallback",
}


def small_cnn(frozen: bool = False) -> keras.Model:
    """Conv `conv_a` (6 filters, 5x5, same) -> `conv_b` (4, 3x3) -> `gap` -> 2-way `dense`;
    `frozen` makes `conv_a` untrainable."""
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(
        6, 5, padding="same", activation="relu", name="conv_a", trainable=not frozen
    )(i)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(i, keras.layers.Dense(2, activation="softmax", name="dense")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def random_data(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`n` uniform random 16x16 RGB images and binary labels (seed 0)."""
    rng = np.random.default_rng(0)
    return rng.random((n, 16, 16, 3), dtype=np.float32), rng.integers(0, 2, n)


class EpochsSeen(keras.callbacks.Callback):
    """Records the epochs that began (to prove a callback failed before the first one)."""

    def __init__(self):
        super().__init__()
        self.begun = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)
