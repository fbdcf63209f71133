"""User data to arrays and classes, in one place: image checks (one rule, one message style),
batches from numpy / tf.data / generators, labels, predicted classes of any classifier head,
and balanced picks over classes. Nothing else in keras-cnnvis validates images or thresholds
outputs.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Iterator, Sequence

import numpy as np

# -- images ----------------------------------------------------------------------------------


def _model_shape(model: Any) -> tuple | None:
    if model is None:
        return None
    from keras_cnnvis.model.layers import input_shape

    return input_shape(model)


def _expected(shape: tuple | None) -> str:
    if shape is None:
        return "(N, height, width, channels)"
    return f"(N, {', '.join('any' if s is None else str(s) for s in shape)})"


def as_image_array(images: Any, what: str = "images") -> np.ndarray:
    """Images as a float32 numpy array, refusing what cannot be pixels.

    Only the type is checked here (see `check_images` for the shape against a model).

    Raises:
        ValueError: for None, several arrays (the inputs of a multi-input model) or a
            dtype that is not real numbers.
    """
    if images is None:
        raise ValueError(f"No {what} given; pass a numpy array (N, height, width, channels).")
    if isinstance(images, (list, tuple, dict)):
        raise ValueError(
            f"The {what} are {len(images)} arrays (inputs of a multi-input model?); "
            "keras-cnnvis visualises models with one image input. Attach the callback to a "
            "model with a single image input and pass only those images."
        )
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    arr = np.asarray(images)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ValueError(
            f"The {what} have dtype {arr.dtype}; pass real numbers (float or integer pixels, "
            "preprocessed the way the model expects)."
        )
    return arr.astype(np.float32, copy=False)


def check_images(
    images: Any,
    model: Any = None,
    what: str = "images",
    single: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validates an image batch (against a model's input when given); returns float32.

    The one rule for images everywhere in keras-cnnvis: real numbers (float or integer
    pixels, converted to float32, never rescaled), a batch `(N, height, width, channels)`,
    at least one image, the model's input shape where the model fixes it, and finite values.

    Example:

    ```python
    probe = check_images(x_val[:8], model, "probe images")   # (8, 64, 64, 3) float32
    ```

    Args:
        images: numpy array or tensor `(N, H, W, C)` (or `(H, W, C)` when `single`).
        model: the model the images are for. Defaults to None (no shape check).
        what: what to call the images in messages. Defaults to `"images"`.
        single: accept one image `(H, W, C)` as a batch of one. Defaults to False.
        finite: refuse NaN and infinite values. Defaults to True.

    Returns:
        The images as a float32 `(N, H, W, C)` array.

    Raises:
        ValueError: naming the problem and the fix: wrong type or dtype, wrong rank, an
            empty batch, a model that does not take images, a shape the model does not
            take, or NaN/inf values.
    """
    arr = as_image_array(images, what)
    shape = _model_shape(model)
    if single and arr.ndim == 3 and (shape is None or len(shape) == 3):
        arr = arr[None]
    expected = _expected(shape)
    if arr.ndim != 4:
        hint = " For one image pass image[None]." if arr.ndim == 3 else ""
        raise ValueError(
            f"The {what} have shape {arr.shape}; expected a batch of images {expected}.{hint}"
        )
    if len(arr) == 0:
        raise ValueError(f"The {what} batch is empty; pass at least one image {expected}.")
    check_image_shape(arr, model, what, shape)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"The {what} contain NaN or inf values.")
    return arr


def check_image_shape(
    batch: np.ndarray, model: Any, what: str = "images", shape: tuple | None = None
) -> None:
    """Raises ValueError if a batch's per-image shape is not what `model` takes.

    Args:
        batch: an image batch `(N, H, W, C)`.
        model: the model (None: nothing to check).
        what: what to call the images in messages. Defaults to `"images"`.
        shape: the model's input shape, if already known. Defaults to None.
    """
    shape = shape if shape is not None else _model_shape(model)
    if shape is None:
        return
    if len(shape) != 3:
        raise ValueError(
            f"Model '{model.name}' takes inputs of shape {shape} per example; {what} need an "
            "image model (height, width, channels)."
        )
    got = tuple(batch.shape[1:])
    if len(got) != 3 or any(s is not None and int(s) != int(a) for s, a in zip(shape, got)):
        raise ValueError(
            f"The {what} have shape {tuple(batch.shape)}; model '{model.name}' expects "
            f"{_expected(shape)}. Resize the images (or pick them from the model's own data)."
        )


# -- batches ---------------------------------------------------------------------------------


def _rank(x: Any) -> int:
    return len(np.shape(x)) if hasattr(x, "shape") else -1


def _is_dataset(data: Any) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def data_length(data: Any) -> int | None:
    """The number of images of an array source (None for streams)."""
    x = data[0] if isinstance(data, tuple) and data and _rank(data[0]) == 4 else data
    if hasattr(x, "shape") and not _is_dataset(x) and _rank(x) == 4:
        return len(x)
    return None


def image_batches(data: Any, batch_size: int = 64) -> Iterator[np.ndarray]:
    """Yields float32 image batches `(B, H, W, C)` from arrays, datasets or generators.

    Accepts a numpy array of images, a tuple `(x, y[, sample_weight])`, a
    `tf.data.Dataset` (batched or not; tuple elements use their first component), a
    `keras.utils.PyDataset`, or any iterable/generator yielding batches, single images or
    `(x, y)` tuples. Single images are grouped into batches of `batch_size`.

    Example:

    ```python
    for batch in image_batches(tf.data.Dataset.from_tensor_slices((x, y)), 32):
        print(batch.shape)
    ```

    Args:
        data: the image source.
        batch_size: batch size for arrays and unbatched sources. Defaults to 64.

    Returns:
        An iterator of float32 numpy arrays.

    Raises:
        ValueError: for elements that are not images of rank 3 (single) or 4 (batch).
    """
    import keras

    if isinstance(data, tuple) and data and _rank(data[0]) == 4:
        data = data[0]
    if isinstance(data, dict):
        raise ValueError("Pass the images themselves, not a dict of inputs.")
    if hasattr(data, "shape") and not _is_dataset(data):
        if _rank(data) != 4:
            raise ValueError(
                f"Images must be a (N, height, width, channels) array; got shape "
                f"{tuple(np.shape(data))}. For one image, pass x[None]."
            )
        for start in range(0, len(data), batch_size):
            yield np.asarray(data[start : start + batch_size], dtype=np.float32)
        return
    if isinstance(data, keras.utils.PyDataset):
        n = data.num_batches
        items = (data[i] for i in range(n)) if n is not None else iter(data)
    elif _is_dataset(data):
        items = data.as_numpy_iterator()
    elif isinstance(data, collections.abc.Iterable):
        items = iter(data)
    else:
        raise ValueError(
            f"Cannot read images from {type(data).__name__}; pass a numpy array, a "
            "tf.data.Dataset, a PyDataset or a generator of batches."
        )
    pending: list[np.ndarray] = []
    for item in items:
        if isinstance(item, (tuple, list)) and item and hasattr(item[0], "shape"):
            item = item[0]
        if isinstance(item, dict):
            raise ValueError("Data elements must be images or (images, labels); got a dict.")
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim == 3:
            pending.append(arr)
            if len(pending) == batch_size:
                yield np.stack(pending)
                pending = []
        elif arr.ndim == 4:
            if pending:
                yield np.stack(pending)
                pending = []
            yield arr
        else:
            raise ValueError(
                "Data elements must be images (height, width, channels) or batches "
                f"(N, height, width, channels); got shape {arr.shape}."
            )
    if pending:
        yield np.stack(pending)


def labelled_arrays(data: Any, limit: int, what: str = "validation_data") -> tuple:
    """`(x, y)` numpy arrays (at most `limit` examples) from `(x, y)` or a tf.data.Dataset.

    `y` is None when the data has no labels. Images go through `as_image_array`.

    Raises:
        ValueError: for other containers, an empty dataset, or images that are not numbers.
    """
    if isinstance(data, (tuple, list)):
        if not 1 <= len(data) <= 3:
            raise ValueError(
                f"{what} must be (x, y) arrays or a tf.data.Dataset of (x, y) batches; got a "
                f"sequence of {len(data)} items."
            )
        x = as_image_array(data[0], "validation images")[:limit]
        y = None if len(data) < 2 or data[1] is None else np.asarray(data[1])[:limit]
        return x, y
    if _is_dataset(data):
        spec = data.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if getattr(spec, "shape", None) is not None and spec.shape.rank == 3:
            data = data.batch(64)  # a dataset of single images
        xs, ys, count = [], [], 0
        for batch in data:
            x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
            xs.append(as_image_array(x, "validation images"))
            if y is not None:
                ys.append(np.asarray(y))
            count += len(xs[-1])
            if count >= limit:
                break
        if not xs:
            raise ValueError(f"{what} is an empty dataset; pass some examples.")
        return np.concatenate(xs)[:limit], (np.concatenate(ys)[:limit] if ys else None)
    raise ValueError(
        f"{what} must be (x, y) numpy arrays or a tf.data.Dataset of (x, y) batches; got "
        f"{type(data).__name__}."
    )


# -- labels and classes ----------------------------------------------------------------------


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


def predicted_classes(outputs: Any, activation: str | None = None) -> np.ndarray:
    """The class each output predicts: the one rule every monitor and page uses.

    - `(N, C)` scores with C > 1 (softmax probabilities or logits): the argmax. For a
      multi-label head (independent sigmoids) this is the top label.
    - one unit per example, `(N,)` or `(N, 1)` (a binary classifier): class 1 when the unit
      says so: probability > 0.5 after a sigmoid (`activation="sigmoid"`), logit > 0
      otherwise (`"linear"`, the `from_logits=True` head). With `activation=None` (not
      known) values inside [0, 1] are read as probabilities.

    Example:

    ```python
    predicted_classes(model.predict(x), output_activation(model).name)
    ```

    Args:
        outputs: the model's outputs.
        activation: the name of the model's final activation (see
            `keras_cnnvis.model.output_activation`). Defaults to None.

    Returns:
        int64 `(N,)`.

    Raises:
        ValueError: for outputs that are not one row of class scores per example.
    """
    out = np.asarray(outputs, np.float32)
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
        return np.arange(max(0, int(n)), dtype=np.int64)[: max(0, int(n))]
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


__all__: Sequence[str] = (
    "as_image_array",
    "balanced_indices",
    "binary_threshold",
    "check_image_shape",
    "check_images",
    "class_labels",
    "class_scores",
    "data_length",
    "image_batches",
    "labelled_arrays",
    "n_classes_of",
    "predicted_classes",
)
