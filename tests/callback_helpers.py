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


def kill_when_ready(script: str, args: list, ready, timeout: float = 180.0) -> None:
    """Runs `python <script> <args>`, calls `ready()` every 0.2 s until it holds (at most
    `timeout` seconds), then SIGKILLs the process; asserts that it was still running, that
    `ready()` held and that the signal killed it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, script, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline, done = time.monotonic() + timeout, False
        while time.monotonic() < deadline and proc.poll() is None and not done:
            done = bool(ready())
            if not done:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert done, f"{os.path.basename(script)} was not ready within {timeout:g} s"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
