"""One-off analysis of a trained model: every monitor of `CNNVisCallback` once, at step 0, on
images from a folder, a `.npy`/`.npz` file, a built-in set or arrays (`cnnvis analyze`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import keras

from keras_cnnvis.analysis.data import prepare


@dataclass
class Analysis:
    """What `analyze` did.

    Attributes:
        run_dir: the run directory written into (`<logdir>/<run_name>`).
        n_images: images analysed.
        preprocess: the preprocessing used (`"auto"` resolved).
        class_names: class names used, or None.
        seconds: monitor -> wall seconds of its record, for those that wrote one.
        failed: monitor -> the error that stopped it.
        skipped: monitor -> why it does not apply to this model or data.
    """

    run_dir: str
    n_images: int
    preprocess: str
    class_names: list | None
    seconds: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)


def analyze(
    model: keras.Model,
    data: Any,
    logdir: str,
    preprocess: str = "auto",
    class_names: Sequence[str] | None = None,
    n: int | None = 500,
    seed: int = 0,
    size: Sequence[int] | None = None,
    layers: Sequence[Any] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    options: dict | None = None,
    n_probes: int = 8,
    output: int | None = None,
    run_name: str = "cnnvis",
    on_error: str = "warn",
    progress: bool = True,
) -> Analysis:
    """Runs every monitor of `CNNVisCallback` once on a trained model, as records at step 0.

    The records are those `CNNVisCallback(logdir, validation_data=..., budget=None)` writes
    before the first epoch of a fit (the expensive monitors' too, which a fit records only
    once training has begun), so `cnnvis board logdir` shows them in the cnnvis tab.

    Example:

    ```python
    model = keras.models.load_model("model.keras", compile=False)
    analyze(model, "data/val", "runs/analysis")   # a folder with one subfolder per class
    ```

    Args:
        model: a Keras model (load saved ones with `keras.models.load_model(path,
            compile=False)`).
        data: a folder of class subfolders, a `.npy`/`.npz` file, a built-in set name
            (`"shapes"`, `"digits"`, ...), images `(N, H, W, C)` or `(x, y)` (see
            `load_images`). Images are resized to the model's input and converted to its
            channels.
        logdir: the TensorBoard log directory.
        preprocess: how [0, 1] images become the model's input: `"unit"` ([0, 1]),
            `"pixels"` ([0, 255]), `"symmetric"` ([-1, 1]), a keras.applications name (its
            `preprocess_input`), `"none"` (the data as loaded) or `"auto"` (`"pixels"` for
            a model that rescales its input, else `"unit"`; see `auto_preprocess`). Arrays
            as stored are read as 0..255 pixels when they are integers or go above 1.
            Defaults to `"auto"`.
        class_names: class names (else from the folder, the built-in set or the `.npz`).
            Defaults to None.
        n: at most this many images, the classes taken in turn. Defaults to 500.
        seed: seed of the subset. Defaults to 0.
        size: `(height, width)` for a model that takes any size. Defaults to None (the
            data's own size).
        layers: layers to watch. Defaults to None (the model's anatomy).
        include: monitor names to run. Defaults to None (all).
        exclude: monitor names to leave out. Defaults to ().
        options: per-monitor constructor arguments (see `CNNVisCallback`). Defaults to None.
        n_probes: probe images for maps and overlays. Defaults to 8.
        output: the output to explain for a multi-output model. Defaults to None.
        run_name: the run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` (a failing monitor warns and the others run) or `"raise"`.
            Defaults to `"warn"`.
        progress: show a progress bar over the monitors. Defaults to True.

    Returns:
        An `Analysis` (seconds per monitor, failures, skipped monitors).

    Raises:
        ValueError: for bad data, preprocessing, options or misconfiguration against the
            model, before any monitor runs.
        FileNotFoundError: for data that does not exist.
    """
    from keras_cnnvis.callbacks import CNNVisCallback
    from keras_cnnvis.callbacks.monitors import REGISTRY
    from keras_cnnvis.model.traps import warn_onednn_trap

    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise'; got {on_error!r}.")
    x, y, names, used = prepare(model, data, preprocess, n, seed, size, output)
    names = list(class_names) if class_names is not None else names
    callback = CNNVisCallback(
        logdir,
        validation_data=(x, y),
        class_names=names,
        layers=layers,
        n_probes=n_probes,
        max_examples=len(x),
        include=include,
        exclude=exclude,
        options=options,
        run_name=run_name,
        on_error=on_error,
        budget=None,
        output=output,
    )
    warn_onednn_trap(model, "keras_cnnvis.analyze")
    callback.set_model(model)
    callback.set_params({"epochs": 1, "steps": None, "verbose": 0})
    callback.on_train_begin()
    result = Analysis(os.path.join(logdir, run_name), len(x), used, names)
    bar = keras.utils.Progbar(len(callback.monitors), unit_name="monitor") if progress else None
    try:
        for i, (monitor, name) in enumerate(zip(callback.monitors, callback.names)):
            monitor.on_error = "raise"  # caught here, so the others still run
            monitor.log_initial = True  # a trained model: the expensive monitors record too
            if getattr(monitor, "faithfulness", None) is not None:
                monitor.faithfulness["log_initial"] = True  # and Grad-CAM's scores
            start = time.perf_counter()
            try:
                monitor.on_epoch_begin(0)
                result.seconds[name] = time.perf_counter() - start
            except Exception as error:
                if on_error == "raise":
                    raise
                result.failed[name] = f"{type(error).__name__}: {error}"
                warnings.warn(f"analyze: the '{name}' monitor failed: {error}", RuntimeWarning)
            if bar is not None:
                bar.update(i + 1)
    finally:
        callback.on_train_end()
    result.skipped = dict(callback.not_applicable)
    for name, monitor in REGISTRY.items():
        wanted = (include is None or name in include) and name not in exclude
        if wanted and name not in callback.names and name not in result.skipped:
            result.skipped[name] = (
                "the data has no labels of the model's classes"
                if "labels" in monitor.needs and y is None
                else f"it needs {', '.join(monitor.needs)}"
            )
    return result
