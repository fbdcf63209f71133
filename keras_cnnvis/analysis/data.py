"""Data for a one-off analysis: images from a folder, an `.npy`/`.npz` file, a built-in set
or arrays, fitted to a model's input (size, channels) and preprocessed the way it expects.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import keras
import numpy as np

from keras_cnnvis import inputs

PREPROCESS = ("auto", "none", "unit", "pixels", "symmetric")
"""Preprocessing names; a keras.applications name (`"resnet50"`, ...) also works."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class Images:
    """Images as loaded, before they are fitted to a model.

    Attributes:
        x: float32 `(N, H, W, C)`.
        y: int labels `(N,)` or None.
        class_names: names the labels index, or None.
        unit: whether `x` is known to be in [0, 1] (folders and built-in sets); arrays are
            kept as stored.
        integers: whether the stored arrays were integers (read as 0..255 pixels).
    """

    x: np.ndarray
    y: np.ndarray | None
    class_names: list | None
    unit: bool
    integers: bool = False


# -- preprocessing ---------------------------------------------------------------------------
def preprocess_function(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function mapping [0, 1] images to a model's input for a preprocessing name.

    `"unit"` keeps [0, 1], `"pixels"` gives [0, 255], `"symmetric"` [-1, 1]; a
    keras.applications name (`"resnet50"`, `"mobilenet_v2"`, `"efficientnet"`, ...) applies
    that application's `preprocess_input` to the 0..255 pixels. `"none"` gives None: the
    data goes in as it was loaded (for arrays already preprocessed for the model).

    Example:

    ```python
    preprocess_function("symmetric")(np.array([0.0, 0.5, 1.0]))   # [-1, 0, 1]
    ```

    Args:
        name: one of `PREPROCESS` (except `"auto"`, see `auto_preprocess`) or an
            application name.

    Returns:
        The function, or None for `"none"`.

    Raises:
        ValueError: for an unknown name.
    """
    simple = {
        "unit": lambda x: x,
        "pixels": lambda x: x * 255.0,
        "symmetric": lambda x: x * 2.0 - 1.0,
    }
    if name == "none":
        return None
    if name in simple:
        return simple[name]
    from keras_cnnvis.synthesis.models import application_preprocess

    function = application_preprocess(str(name))
    if function is None:
        raise ValueError(
            f"Unknown preprocessing {name!r}: use one of {', '.join(PREPROCESS)} or a "
            "keras.applications name such as resnet50, mobilenet_v2 or efficientnet."
        )
    return function


def auto_preprocess(model: keras.Model) -> str:
    """`"pixels"` when the model rescales 0..255 pixels itself (a `Rescaling` by less than
    0.1, or a `Normalization` with means above 2, before its first convolution, as in the
    keras.io examples), else `"unit"`."""
    from keras_cnnvis.model import is_conv, iter_layers

    for info in iter_layers(model):
        layer = info.layer
        if is_conv(layer):
            break
        if isinstance(layer, keras.layers.Rescaling):
            if float(np.max(np.abs(np.asarray(layer.scale, np.float32)))) < 0.1:
                return "pixels"
        elif isinstance(layer, keras.layers.Normalization):
            mean = getattr(layer, "mean", None)
            if mean is not None and float(np.max(np.abs(keras.ops.convert_to_numpy(mean)))) > 2:
                return "pixels"
    return "unit"


def to_unit(x: np.ndarray, integers: bool = False, what: str = "images") -> np.ndarray:
    """Pixels of unknown range as [0, 1]: integers and 0..255 floats are divided by 255.

    Raises:
        ValueError: when the range is neither [0, 1] nor 0..255.
    """
    lo, hi = float(np.min(x)), float(np.max(x))
    if integers or (lo >= 0.0 and 1.0 < hi <= 255.0):
        return x / 255.0
    if lo >= 0.0 and hi <= 1.0:
        return x
    raise ValueError(
        f"The {what} range over [{lo:g}, {hi:g}], neither [0, 1] nor 0..255 pixels; if they "
        "are already preprocessed for the model, pass preprocess='none' (--preprocess none)."
    )


# -- loading and fitting ---------------------------------------------------------------------
def _arrays(data: Any, what: str) -> Images:
    """Images from an `.npy`/`.npz` path, an array, or `(x, y)` / `(x, y, class_names)`."""
    names = None
    if isinstance(data, (str, os.PathLike)):
        stored = np.load(os.fspath(data), allow_pickle=False)
        if isinstance(stored, np.ndarray):
            x, y = stored, None
        else:
            with stored:
                pick = [k for k in ("x", "images", "arr_0") if k in stored.files]
                if not pick:
                    raise ValueError(
                        f"The {what} file {os.fspath(data)!r} holds {stored.files}; store the "
                        "images as 'x' (or 'images'), the labels as 'y' (or 'labels')."
                    )
                x = stored[pick[0]]
                label = [k for k in ("y", "labels", "arr_1") if k in stored.files]
                y = stored[label[0]] if label else None
                names = stored["class_names"].tolist() if "class_names" in stored.files else None
    elif isinstance(data, (tuple, list)):
        x, y = data[0], data[1] if len(data) > 1 else None
        names = list(data[2]) if len(data) > 2 and data[2] is not None else None
    else:
        x, y = data, None
    x = np.asarray(x)
    integers = x.dtype.kind in "iu"
    images = inputs.as_image_array(x, f"{what} images")
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W) grayscale
    labels = None if y is None else inputs.class_labels(y, len(images))
    return Images(images, labels, names, unit=False, integers=integers)


def check_source(data: Any, what: str = "data") -> str:
    """What `data` is: `"folder"`, `"builtin"` or `"arrays"` (a file or arrays in memory);
    raises before anything loads for a path that cannot be read.

    Raises:
        FileNotFoundError: for a path that does not exist and is no built-in set.
        ValueError: for an existing file that is not `.npy`/`.npz`.
    """
    from keras_cnnvis import datasets

    if not isinstance(data, (str, os.PathLike)):
        return "arrays"
    path = os.fspath(data)
    if os.path.isdir(path):
        return "folder"
    if path in datasets.DATASET_NAMES:
        return "builtin"
    sets = ", ".join(datasets.DATASET_NAMES)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Unknown {what} {path!r}: no such file or folder, and not a built-in set ({sets})."
        )
    if not path.lower().endswith((".npy", ".npz")):
        raise ValueError(
            f"Cannot read {what} {path!r}: pass a folder with one subfolder of images per "
            f"class, a .npy or .npz file, or a built-in set ({sets})."
        )
    return "arrays"


def load_images(
    data: Any, size: int | None = None, n: int | None = None, seed: int = 0, what: str = "data"
) -> Images:
    """Images (and labels, class names) from a folder, a file, a built-in set or arrays.

    A folder holds one subfolder of images per class (their names are the class names);
    `.npy` holds images `(N, H, W[, C])`; `.npz` holds `x` (or `images`), optionally `y`
    (or `labels`) and `class_names`; built-in sets are `keras_cnnvis.datasets.DATASET_NAMES`
    (`shapes` and `digits` offline). Folders and built-in sets are [0, 1] floats; arrays
    are kept as stored (integers become floats).

    Example:

    ```python
    images = load_images("data/pets", size=224, n=200)   # images.x (200, 224, 224, 3)
    ```

    Args:
        data: a path, a built-in set name, an array or `(x, y[, class_names])`.
        size: the square size folders and built-in sets are loaded at. Defaults to None
            (64 for folders and shapes, the native size otherwise).
        n: at most this many images, taking the classes in turn (seeded). Defaults to None
            (all; 2000 for shapes).
        seed: seed of the subset and of generated shapes. Defaults to 0.
        what: what to call the data in messages. Defaults to `"data"`.

    Returns:
        `Images`.

    Raises:
        FileNotFoundError: for a path that does not exist.
        ValueError: for an unknown name, a file without images, or unreadable images.
    """
    from keras_cnnvis import datasets

    kind = check_source(data, what)
    if kind == "arrays":
        loaded = _arrays(data, what)
    else:
        path = os.fspath(data)
        x, y, names = datasets.load(path, n if kind == "builtin" else None, size, seed)
        loaded = Images(x, y, list(names), unit=True)
    if n is not None and len(loaded.x) > n:
        keep = inputs.balanced_indices(loaded.y, n, seed=seed)
        loaded.x = loaded.x[keep]
        loaded.y = None if loaded.y is None else loaded.y[keep]
    return loaded


def fit_images(x: np.ndarray, shape: Sequence, what: str = "images") -> np.ndarray:
    """Resizes a batch to a model's fixed `(H, W)` and converts its channels to `C`.

    Grayscale is repeated for RGB models; RGB becomes luma (ITU-R 601) for one-channel
    models; an alpha channel is dropped.

    Raises:
        ValueError: for a batch that is not images or channels that cannot be converted.
    """
    from keras_cnnvis.rendering import image

    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise ValueError(f"The {what} have shape {x.shape}; expected (N, height, width, C).")
    h, w, c = shape
    if h is not None and w is not None and x.shape[1:3] != (h, w):
        x = image.resize(x, (int(h), int(w)))
    have = x.shape[-1]
    if c is None or have == c:
        return x
    if have == 4 and c in (1, 3):
        x, have = x[..., :3], 3
    if have == c:
        return x
    if have == 1 and c == 3:
        return np.repeat(x, 3, axis=-1)
    if have == 3 and c == 1:
        return (x @ _LUMA)[..., None]
    raise ValueError(f"The model takes {c}-channel images; the {what} have {have} channels.")


def _drop_foreign_labels(model: keras.Model, loaded: Images, output: int | None) -> None:
    """Drops labels that are not the model's classes (another class count), with a warning."""
    from keras_cnnvis.model.head import model_head

    n = model_head(model, output or 0).n_classes
    if n is None or loaded.y is None:
        return
    names = loaded.class_names
    if (names is not None and len(names) != n) or (len(loaded.y) and loaded.y.max() >= n):
        count = len(names) if names is not None else int(loaded.y.max()) + 1
        warnings.warn(
            f"The data has {count} classes but model '{model.name}' has {n}: its labels "
            "are not the model's classes and are not used (monitors that need labels are "
            "skipped; the others explain the predicted classes).",
            UserWarning,
            stacklevel=4,
        )
        loaded.y = loaded.class_names = None


def prepare(
    model: keras.Model,
    data: Any,
    preprocess: str = "auto",
    n: int | None = 500,
    seed: int = 0,
    size: Sequence[int] | None = None,
    output: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list | None, str]:
    """The images of `data` as `model` takes them: loaded, fitted, preprocessed, checked.

    Returns:
        `(x, y, class_names, preprocess)` with `preprocess` resolved from `"auto"`.

    Raises:
        ValueError: for an unknown preprocessing, data that is not images, or images that
            cannot match the model's input.
    """
    from keras_cnnvis.model import check_image_model

    name = auto_preprocess(model) if preprocess == "auto" else str(preprocess)
    function = preprocess_function(name)  # raises for unknown names before loading
    shape = list(check_image_model(model))
    if shape[0] is None or shape[1] is None:
        if size is not None:
            shape[:2] = [int(size[0]), int(size[1])]
    elif size is not None and tuple(size) != tuple(shape[:2]):
        raise ValueError(
            f"Model '{model.name}' takes {shape[0]}x{shape[1]} images; a size of "
            f"{size[0]}x{size[1]} applies only to models that take any size."
        )
    side = None if shape[0] is None else max(int(shape[0]), int(shape[1]))
    loaded = load_images(data, size=side, n=n, seed=seed)
    _drop_foreign_labels(model, loaded, output)
    x = fit_images(loaded.x, shape, "data images")
    if function is not None:
        x = function(x if loaded.unit else to_unit(x, loaded.integers))
    x = inputs.check_images(x, model, "data images")
    return x.astype(np.float32), loaded.y, loaded.class_names, name
