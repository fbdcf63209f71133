"""Confusion matrix and per-class accuracy of a classifier on labelled images: which classes
the network confuses with which (counts only; drawing is in `keras_cnnvis.rendering.confusion`).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.model import FeatureExtractor, output_activation


def classes_from_outputs(
    outputs: Any, activation: str | None = None, dense: bool = False
) -> tuple[np.ndarray, int]:
    """Predicted classes and the number of classes of classifier outputs.

    The classes follow `keras_cnnvis.inputs.predicted_classes` (argmax of `(N, C)` scores;
    for one binary unit, probability > 0.5 after a sigmoid, logit > 0 otherwise).

    Args:
        outputs: the model's outputs.
        activation: the model's final activation (`output_activation(model).name`).
            Defaults to None (a one-unit output inside [0, 1] is read as a probability).
        dense: per-pixel outputs (segmentation): one class per pixel. Defaults to False.

    Returns:
        `(classes, n_classes)`: int64 `(N,)` and the number of classes.

    Raises:
        ValueError: for outputs that are not class scores.
    """
    classes = inputs.predicted_classes(outputs, activation, dense=dense)
    return classes, inputs.n_classes_of(outputs)


def count_confusions(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Counts `matrix[t, p]` = examples of true class `t` predicted as `p` (int64 `(n, n)`).

    Raises:
        ValueError: for label arrays of different lengths or classes out of range.
    """
    t = inputs.class_labels(np.reshape(y_true, -1) if np.ndim(y_true) > 2 else y_true)
    p = inputs.class_labels(np.reshape(y_pred, -1) if np.ndim(y_pred) > 2 else y_pred, len(t))
    for name, v in (("label", t), ("prediction", p)):
        if len(v) and (v.min() < 0 or v.max() >= n_classes):
            bad = int(v[(v < 0) | (v >= n_classes)][0])
            raise ValueError(
                f"A {name} is class {bad}, outside the {n_classes} classes 0..{n_classes - 1}."
            )
    return (
        np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
        .reshape(n_classes, n_classes)
        .astype(np.int64)
    )


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """The fraction of each true class predicted correctly (recall), float32; NaN for a
    class without examples."""
    matrix = np.asarray(matrix, np.float64)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan).astype(np.float32)


def confusion_matrix(
    model: keras.Model,
    x: Any,
    y: Any,
    n_classes: int | None = None,
    batch_size: int = 64,
    extractor: FeatureExtractor | None = None,
) -> np.ndarray:
    """The confusion matrix of a classifier on labelled images.

    Rows are true classes, columns predicted classes: `matrix[t, p]` counts the examples
    of class `t` the model assigns to `p` (`keras_cnnvis.inputs.predicted_classes`: the
    argmax, or for one binary unit p > 0.5 after a sigmoid, logit > 0 otherwise), so the
    diagonal holds the correct predictions.

    Example:

    ```python
    m = confusion_matrix(model, x_val, y_val)
    per_class_accuracy(m)  # recall of each class
    ```

    Args:
        model: a single-output classifier.
        x: images `(N, H, W, C)`.
        y: labels: class indices `(N,)` or one-hot `(N, classes)`.
        n_classes: number of classes. Defaults to None (the model's output size).
        batch_size: images per compiled call. Defaults to 64.
        extractor: a `FeatureExtractor` of the model to reuse (callbacks keep one).
            Defaults to None (a new one).

    Returns:
        int64 `(n_classes, n_classes)` counts.

    Raises:
        ValueError: for images that do not fit the model, labels that are not one per
            image, a class out of range, or outputs that are not class scores.
    """
    x = inputs.check_images(x, model)
    dense = inputs.is_pixel_labels(y, len(x))
    if not dense:
        y = inputs.class_labels(y, len(x))
    if extractor is None:
        extractor = FeatureExtractor(model, [], batch_size=batch_size)
    _, outputs = extractor(x)
    return confusion_of_outputs(outputs, y, output_activation(model).name, n_classes, dense)


def confusion_of_outputs(
    outputs: np.ndarray,
    y: np.ndarray,
    activation: str,
    n_classes: int | None = None,
    dense: bool = False,
) -> np.ndarray:
    """The confusion matrix from a classifier's outputs already computed (the counting part
    of `confusion_matrix`, for a forward pass shared with other monitors).

    Example:

    ```python
    confusion_of_outputs(model.predict(x_val), y_val, "softmax")
    ```

    Args:
        outputs: the model's outputs on the images.
        y: their class indices `(N,)`, or per-pixel classes `(N, H, W)` when `dense`.
        activation: the output activation's name (`output_activation(model).name`).
        n_classes: number of classes. Defaults to None (the outputs' size).
        dense: whether the labels are per pixel. Defaults to False.

    Returns:
        int64 `(n_classes, n_classes)` counts.
    """
    pred, n_out = classes_from_outputs(outputs, activation, dense)
    if dense:  # masks at the output's resolution
        y = inputs.pixel_labels(y, len(pred), size=pred.shape[1:])
    return count_confusions(y, pred, int(n_classes or n_out))


def class_names_for(n_classes: int, class_names: Sequence[str] | None) -> list[str]:
    """`class_names` checked against `n_classes`, or `"0".."n-1"`.

    Raises:
        ValueError: if the number of names differs from the number of classes.
    """
    if class_names is None:
        return [str(i) for i in range(n_classes)]
    names = [str(n) for n in class_names]
    if len(names) != n_classes:
        raise ValueError(
            f"{len(names)} class names were given for {n_classes} classes; pass one name "
            "per model output."
        )
    return names
