"""Labels and classes: class indices from sparse or one-hot labels, per-pixel masks, the classes
and scores any classifier head predicts (the one rule every monitor uses), balanced picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def class_labels(y: Any, n: int | None = None) -> np.ndarray:
    """Integer class labels `(N,)` from class indices, a `(N, 1)` column or one-hot rows.

    Example:

    ```python
    class_labels([[0, 1], [1, 0]])   # array([1, 0])
    ```

    Args:
        y: labels.
        n: the number of examples they must describe. Defaults to None (any).

    Returns:
        int64 `(N,)`.

    Raises:
        ValueError: if the labels are not one per example, or not integers >= 0.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    elif y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1 or (n is not None and len(y) != n):
        raise ValueError(
            f"Labels must be one class index (or one-hot row) per example ({n}); got shape "
            f"{np.shape(y)}."
        )
    if y.dtype.kind not in "iu":
        ok = y.dtype.kind in "fb" and (
            y.dtype.kind == "b" or np.all(np.isfinite(y)) and np.all(y == np.round(y))
        )
        if not ok:
            raise ValueError("Labels must be integer class indices >= 0 (or one-hot rows).")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError("Labels must be integer class indices >= 0 (or one-hot rows).")
    return y


def check_class_range(labels: Any, n_classes: int | None, model_name: str) -> None:
    """Raises ValueError for a class index a model with `n_classes` classes does not have.

    Args:
        labels: class indices (any shape; per example or per pixel), or None.
        n_classes: the model's classes (2 for one binary unit), or None (nothing to check).
        model_name: the model's name, for the message.
    """
    if labels is None or n_classes is None:
        return
    labels = np.asarray(labels)
    if labels.size and labels.max() >= n_classes:
        bad = int(labels[labels >= n_classes].flat[0])
        raise ValueError(
            f"Class index {bad} is out of range for model '{model_name}' with {n_classes} "
            f"classes; use indices 0..{n_classes - 1}."
        )


def pixel_labels(y: Any, n: int | None = None, size: tuple | None = None) -> np.ndarray:
    """Per-pixel class labels `(N, H, W)` from `(N, H, W)`, `(N, H, W, 1)` or one-hot
    `(N, H, W, C)` masks (segmentation).

    Args:
        y: the masks.
        n: the number of examples they must describe. Defaults to None (any).
        size: the `(H, W)` they must have (the model's output size). Defaults to None.

    Returns:
        int64 `(N, H, W)`.

    Raises:
        ValueError: for masks that are not one per example, of another size, or not integer
            classes >= 0.
    """
    y = np.asarray(y)
    if y.ndim == 4:
        y = y[..., 0] if y.shape[-1] == 1 else np.argmax(y, axis=-1)
    if y.ndim != 3 or (n is not None and len(y) != n):
        raise ValueError(
            f"Per-pixel labels must be one mask (height, width) per example ({n}); got shape "
            f"{np.shape(y)}."
        )
    if size is not None and tuple(y.shape[1:]) != tuple(size):
        raise ValueError(
            f"Per-pixel labels of size {tuple(y.shape[1:])} do not match the model's output "
            f"maps {tuple(size)}; pass masks at the output's resolution."
        )
    flat = class_labels(y.reshape(-1)) if y.size else np.zeros(0, np.int64)
    return flat.reshape(y.shape)


def is_pixel_labels(y: Any, n_images: int) -> bool:
    """Whether labels hold a mask per example (`(N, H, W[, C])`) rather than one class."""
    shape = np.shape(y)
    return len(shape) >= 3 and shape[0] == n_images and (len(shape) == 3 or shape[-1] <= 256)


def predicted_classes(
    outputs: Any, activation: str | None = None, dense: bool = False
) -> np.ndarray:
    """The class each output predicts: the one rule every monitor and page uses.

    - `(N, C)` scores with C > 1 (softmax probabilities or logits): the argmax. For a
      multi-label head (independent sigmoids) this is the top label.
    - one unit per example, `(N,)` or `(N, 1)` (a binary classifier): class 1 when the unit
      says so: probability > 0.5 after a sigmoid (`activation="sigmoid"`), logit > 0
      otherwise (`"linear"`, the `from_logits=True` head). With `activation=None` (not
      known) values inside [0, 1] are read as probabilities.
    - with `dense=True`, per-pixel outputs `(N, H, W, C)` (or `(N, H, W)`) the same way at
      every position (segmentation): `(N, H, W)` classes.

    Example:

    ```python
    predicted_classes(model.predict(x), output_activation(model).name)
    ```

    Args:
        outputs: the model's outputs.
        activation: the name of the model's final activation (see
            `keras_cnnvis.model.output_activation`). Defaults to None.
        dense: outputs are per-pixel maps. Defaults to False.

    Returns:
        int64 `(N,)`, or `(N, H, W)` with `dense=True`.

    Raises:
        ValueError: for outputs that are not one row of class scores per example (or per
            pixel with `dense=True`).
    """
    out = np.asarray(outputs, np.float32)
    if dense and out.ndim in (3, 4):
        if out.ndim == 4 and out.shape[-1] > 1:
            return np.argmax(out, axis=-1).astype(np.int64)
        maps = out[..., 0] if out.ndim == 4 else out
        return (maps > binary_threshold(out, activation)).astype(np.int64)
    if out.ndim == 2 and out.shape[1] > 1:
        return np.argmax(out, axis=1).astype(np.int64)
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        return (out.reshape(-1) > binary_threshold(out, activation)).astype(np.int64)
    raise ValueError(
        f"The model returns outputs of shape {out.shape}; predicted classes need class "
        "scores (N, classes) or one binary unit per example."
    )


def binary_threshold(outputs: Any, activation: str | None) -> float:
    """The decision threshold of a one-unit binary head: 0.5 for a sigmoid probability, 0
    for a logit; unknown activations read values inside [0, 1] as probabilities."""
    if activation == "sigmoid":
        return 0.5
    if activation is not None:
        return 0.0
    out = np.asarray(outputs, np.float32)
    inside = out.size and np.nanmin(out) >= 0 and np.nanmax(out) <= 1
    return 0.5 if inside else 0.0


def class_scores(outputs: Any, classes: Any, activation: str | None = None) -> np.ndarray:
    """The output score of one class per example, float32 `(N,)`.

    `outputs[i, classes[i]]` for `(N, C)` scores. For one binary unit the two classes
    are read symmetrically: class 1 scores p and class 0 scores 1 - p for a sigmoid
    probability; class 1 scores z and class 0 scores -z for a logit (the same rule as
    `predicted_classes`, and as the attribution targets in the graph).

    Args:
        outputs: the model's outputs.
        classes: one class index per example.
        activation: the model's final activation name. Defaults to None.

    Returns:
        float32 `(N,)`.
    """
    out = np.asarray(outputs, np.float32)
    classes = np.asarray(classes, np.int64).reshape(-1)
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        value = out.reshape(-1)
        if binary_threshold(out, activation) == 0.5:
            return np.where(classes == 1, value, 1.0 - value).astype(np.float32)
        return np.where(classes == 1, value, -value).astype(np.float32)
    return np.take_along_axis(out, classes[:, None], axis=1)[:, 0].astype(np.float32)


def n_classes_of(outputs: Any) -> int:
    """The number of classes of classifier outputs: C for `(N, C)`, 2 for one unit (0 for
    None)."""
    if outputs is None:
        return 0
    out = np.asarray(outputs)
    return 2 if out.ndim == 1 or out.shape[-1] == 1 else int(out.shape[-1])


# -- balanced picks --------------------------------------------------------------------------


def balanced_indices(
    labels: Any,
    n: int,
    seed: int | None = None,
    class_order: str = "sorted",
    sort: bool = True,
) -> np.ndarray:
    """Indices of up to `n` examples, taking the classes in turn.

    Round-robin over classes: each round takes the next example of every class that has
    one left, so every class is represented as far as `n` allows. Within a class the
    examples come in data order, or in a seeded random order when `seed` is given.

    Example:

    ```python
    balanced_indices(y_val, 8)            # one per class in turn, first examples first
    balanced_indices(y_val, 500, seed=0)  # a seeded class-balanced subset
    ```

    Args:
        labels: class labels `(N,)` (or None: the first `n` examples).
        n: how many to pick.
        seed: shuffle within each class with this seed. Defaults to None (data order).
        class_order: `"sorted"` (by class index) or `"first_seen"` (order of first
            appearance): which classes get the extra picks when `n` is not a multiple of
            the number of classes. Defaults to `"sorted"`.
        sort: return the indices sorted (data order) instead of in pick order. Defaults
            to True.

    Returns:
        int64 indices.
    """
    if labels is None:
        return np.arange(max(0, int(n)), dtype=np.int64)
    labels = np.asarray(labels).reshape(-1)
    if class_order == "sorted":
        classes = np.unique(labels).tolist()
    elif class_order == "first_seen":
        classes = list(dict.fromkeys(labels.tolist()))
    else:
        raise ValueError(f"class_order must be 'sorted' or 'first_seen'; got {class_order!r}.")
    rng = None if seed is None else np.random.default_rng(seed)
    pools = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        pools.append(members if rng is None else rng.permutation(members))
    picks: list[int] = []
    depth, limit = 0, min(int(n), len(labels))
    while len(picks) < limit:
        for pool in pools:
            if depth < len(pool) and len(picks) < limit:
                picks.append(int(pool[depth]))
        depth += 1
    out = np.asarray(picks, dtype=np.int64)
    return np.sort(out) if sort else out
