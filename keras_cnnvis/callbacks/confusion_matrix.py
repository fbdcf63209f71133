"""ConfusionMatrixCallback: logs the validation confusion matrix (an image with counts and
class names) and per-class accuracy every few epochs. Counting is in `keras_cnnvis.confusion`,
drawing in `keras_cnnvis.rendering.confusion`.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.confusion import (
    class_names_for,
    classes_from_outputs,
    confusion_matrix,
    confusion_of_outputs,
    count_confusions,
    per_class_accuracy,
)
from keras_cnnvis import inputs
from keras_cnnvis.model import FeatureExtractor, output_activation
from keras_cnnvis.rendering.confusion import render_confusion


def tag_name(name: str) -> str:
    """A class name made safe as the last part of a tag (`/` and spaces become `_`)."""
    return re.sub(r"[/\s]+", "_", str(name)).strip("_") or "_"


class ConfusionMatrixCallback(MonitorCallback):
    """Logs the confusion matrix and per-class accuracy on validation data.

    Writes the image `confusion/matrix` (counts in the cells, coloured by the fraction of
    each true class, class names on both axes), one scalar `confusion/accuracy/<class>`
    per class (the fraction of its examples predicted correctly; classes without
    examples are skipped; `/` and spaces in names become `_`) and the record
    `json/confusion/matrix` into `<log_dir>/cnnvis`.

    Example:

    ```python
    cb = ConfusionMatrixCallback("runs/exp1", (x_val, y_val), class_names=["cat", "dog"])
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        validation_data: `(images, labels)`, labels as class indices, one-hot rows, or
            per-pixel masks `(N, H, W)` for a segmentation model (the matrix then counts
            pixels).
        class_names: one name per class. Defaults to None (`"0"`, `"1"`, ...).
        batch_size: images per compiled call. Defaults to 64.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for data that is not `(images, labels)` or labels not
            one per image; at `on_train_begin` (before any epoch) for images that do not
            fit the model, outputs that are not class scores, a wrong number of class
            names, or labels outside the model's classes.
    """

    def __init__(
        self,
        log_dir: str,
        validation_data: Any,
        class_names: Sequence[str] | None = None,
        batch_size: int = 64,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError(
                "validation_data must be a pair (images, labels) of numpy arrays; got "
                f"{type(validation_data).__name__}."
            )
        self.x = inputs.check_images(validation_data[0], None, "validation images")
        self.dense = inputs.is_pixel_labels(validation_data[1], len(self.x))
        labels = inputs.pixel_labels if self.dense else inputs.class_labels
        self.y = labels(validation_data[1], len(self.x))
        self.class_names = None if class_names is None else list(class_names)
        self.batch_size = int(batch_size)
        self._extractor: FeatureExtractor | None = None
        self._names: list[str] = []

    def setup(self) -> None:
        inputs.check_image_shape(self.x, self.model, "validation images")
        self._extractor = FeatureExtractor(self.model, [], batch_size=self.batch_size)
        _, out = self._extractor.eager(self.x[:1])  # checks without tracing
        self._activation = output_activation(self.model).name
        pred, n_classes = classes_from_outputs(out, self._activation, dense=self.dense)
        if self.dense:  # masks at the output's resolution
            inputs.pixel_labels(self.y, size=pred.shape[1:])
        self._names = class_names_for(n_classes, self.class_names)
        count_confusions(self.y, np.zeros_like(self.y), n_classes)  # labels in range

    def log(self, step: int, logs: dict | None = None):
        shared = self._shared_for("x")
        if shared is not None:  # the outputs of the pass shared with other monitors
            outputs = shared.outputs(self.shared_rows["x"])
            matrix = confusion_of_outputs(outputs, self.y, self._activation, dense=self.dense)
        else:
            matrix = confusion_matrix(self.model, self.x, self.y, extractor=self._extractor)
        return lambda: self._record(step, matrix)  # drawn and written in the background

    def _record(self, step: int, matrix: np.ndarray) -> None:
        acc = per_class_accuracy(matrix)
        overall = float(np.trace(matrix) / max(1, matrix.sum()))
        unit = "pixels" if self.dense else "n"
        img, _ = render_confusion(
            matrix,
            self._names,
            f"step {step}: accuracy {overall:.3f} ({unit}={int(matrix.sum())})",
        )
        self.writer.images("confusion/matrix", img, step)
        for name, value in zip(self._names, acc):
            if np.isfinite(value):
                self.writer.scalar(f"confusion/accuracy/{tag_name(name)}", float(value), step)
        self.writer.json(
            "json/confusion/matrix",
            {
                "class_names": self._names,
                "matrix": matrix,
                "per_class_accuracy": acc,
                "accuracy": overall,
                "n_examples": int(matrix.sum()),
                "per_pixel": bool(self.dense),
            },
            step,
            kind="confusion",
        )
