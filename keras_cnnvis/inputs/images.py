"""User images to arrays: the one rule for checking image batches (against a model's input),
batches from numpy / tf.data / generators, and `(x, y)` arrays from validation data.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Iterator

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
