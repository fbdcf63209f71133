"""Loaders of real data: scikit-learn digits (offline), keras.datasets, image folders and the
`load` dispatcher, all returned as float32 channels-last numpy arrays in [0, 1].
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from keras_cnnvis.datasets._checks import check_int
from keras_cnnvis.datasets.synthetic import SHAPE_CLASSES, shapes

__all__ = [
    "KERAS_DATASETS",
    "IMAGE_EXTENSIONS",
    "DATASET_NAMES",
    "digits",
    "keras_dataset",
    "from_uint8",
    "image_folder",
    "load",
]

KERAS_DATASETS = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

DATASET_NAMES = ("shapes", "digits") + tuple(KERAS_DATASETS)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resizes a batch (n, h, w, c) to (n, size, size, c), area-averaging when shrinking."""
    if images.shape[1:3] == (size, size):
        return images
    shrink = size < images.shape[1] or size < images.shape[2]
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = np.empty((len(images), size, size, images.shape[-1]), np.float32)
    for i, image in enumerate(images):
        resized = cv2.resize(image, (size, size), interpolation=method)
        out[i] = resized.reshape(size, size, -1)
    return np.clip(out, 0.0, 1.0)


def digits(size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads scikit-learn's handwritten digits (1797 images of 8x8 pixels), offline.

    The data ships with scikit-learn, so this works without a network. Pixel values 0-16 are
    scaled to [0, 1]; with `size`, images are resized with OpenCV (bicubic when enlarging).

    Example:

    ```python
    images, labels = digits(size=32)  # (1797, 32, 32, 1), labels 0-9
    ```

    Args:
        size: height and width of the returned images. Defaults to `None` (the native 8).

    Returns:
        A tuple `(images, labels)`: float32 `(1797, size, size, 1)` in [0, 1] and int32 `(1797,)`.

    Raises:
        ValueError: if `size` is not a positive integer.
    """
    if size is not None:
        size = check_int(size, "size", 1, "Pass None for the native 8x8 or e.g. size=32.")
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0)[..., None]
    if size is not None:
        images = _resize(images, size)
    return images, data.target.astype(np.int32)


def keras_dataset(
    name: str, split: str = "train", n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Loads MNIST, Fashion-MNIST or CIFAR-10 through `keras.datasets`.

    Keras downloads the data on first use and caches it under `~/.keras/datasets`. Pixels are
    scaled to [0, 1] and grayscale images get a channel axis.

    Example:

    ```python
    images, labels = keras_dataset("cifar10", split="test", n=1000)  # (1000, 32, 32, 3)
    ```

    Args:
        name: `"mnist"`, `"fashion_mnist"` or `"cifar10"`.
        split: `"train"` or `"test"`. Defaults to `"train"`.
        n: keep only the first `n` images. Defaults to `None` (all of them).

    Returns:
        A tuple `(images, labels)`: float32 `(N, H, W, C)` in [0, 1] and int32 `(N,)`.

    Raises:
        ValueError: if `name`, `split` or `n` is invalid (checked before any download).
    """
    if name not in KERAS_DATASETS:
        raise ValueError(f"Unknown keras dataset {name!r}; valid names are {list(KERAS_DATASETS)}.")
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
    if n is not None:
        n = check_int(n, "n", 1, "Pass None for the whole split.")
    import keras

    train, test = getattr(keras.datasets, name).load_data()
    images, labels = train if split == "train" else test
    return from_uint8(images[:n], labels[:n])


def from_uint8(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Converts uint8 images `(N, H, W[, C])` and labels of any shape to the package's form.

    Returns:
        float32 `(N, H, W, C)` images in [0, 1] (a channel axis added for grayscale) and
        int32 `(N,)` labels.
    """
    images = np.asarray(images).astype(np.float32) / 255.0
    if images.ndim == 3:
        images = images[..., None]
    return images, np.asarray(labels).reshape(-1).astype(np.int32)


def _read_image(path: str) -> np.ndarray:
    # np.fromfile + imdecode also copes with non-ASCII paths, which cv2.imread does not everywhere.
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"Could not decode image {path!r}; remove it or re-save it as PNG.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_folder(
    path: str | os.PathLike,
    size: int = 64,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Loads a folder with one subfolder of images per class.

    The layout is `path/<class name>/<image>`, with images ending in .png, .jpg, .jpeg or .bmp
    (any case); other files and hidden folders are ignored. Images are read as RGB (grayscale is
    repeated, alpha dropped) and resized to `size` x `size` without keeping the aspect ratio.
    Classes and files are taken in sorted order, so the result is reproducible.

    Example:

    ```python
    images, labels, class_names = image_folder("data/pets", size=96)
    ```

    Args:
        path: the folder that holds the class subfolders.
        size: height and width of the returned images. Defaults to `64`.
        class_names: subfolders to load, in label order. Defaults to `None` (every subfolder,
            sorted by name).

    Returns:
        A tuple `(images, labels, class_names)`: float32 `(N, size, size, 3)` in [0, 1], int32
        `(N,)` and the list of class names that labels index into.

    Raises:
        ValueError: if the folder is missing, has no class subfolders, a class folder has no
            images, a requested class is missing or an image cannot be decoded.
    """
    size = check_int(size, "size", 1, "Use e.g. size=64.")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(
            f"Image folder {path!r} does not exist or is not a folder; expected "
            "path/<class name>/<image>.png."
        )
    found = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    if class_names is None:
        class_names = found
    else:
        class_names = [str(c) for c in class_names]
        missing = [c for c in class_names if c not in found]
        if missing:
            raise ValueError(f"Class folder(s) {missing} not found in {path!r}; it has {found}.")
    if not class_names:
        raise ValueError(
            f"No class subfolders in {path!r}; expected path/<class name>/<image> with "
            f"images ending in {', '.join(IMAGE_EXTENSIONS)}."
        )
    images, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(path, name)
        files = sorted(
            f
            for f in os.listdir(folder)
            if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
        )
        if not files:
            raise ValueError(
                f"No images found in class folder {folder!r}; accepted extensions are "
                f"{', '.join(IMAGE_EXTENSIONS)} (any case)."
            )
        for f in files:
            image = _read_image(os.path.join(folder, f))
            shrink = size < image.shape[0] or size < image.shape[1]
            method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            images.append(cv2.resize(image, (size, size), interpolation=method))
            labels.append(label)
    images = np.stack(images).astype(np.float32) / 255.0
    return images, np.asarray(labels, np.int32), list(class_names)


def _subset(n: int | None, seed: int, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """A seeded random subset of at most `n` rows, kept in their original order."""
    total = len(arrays[0])
    if n is None or n >= total:
        return arrays
    keep = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    return tuple(a[keep] for a in arrays)


def load(
    name: str | os.PathLike,
    n: int | None = None,
    size: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Loads a dataset by name or folder path; used by `cnnvis demo --dataset`.

    `"shapes"` and `"digits"` work offline. `"mnist"`, `"fashion_mnist"` and `"cifar10"` use
    the training split of `keras.datasets` (downloaded on first use). Any other value is read as
    the path of a folder of class subfolders (see `image_folder`).

    Example:

    ```python
    images, labels, class_names = load("shapes", n=2000, size=64)
    images, labels, class_names = load("digits", size=32)
    ```

    Args:
        name: one of `DATASET_NAMES` or a folder path.
        n: number of images. For `"shapes"` the number generated; otherwise at most `n` images
            are kept (a seeded random subset for digits and folders, the first `n` for keras
            datasets). Defaults to `None` (2000 shapes, or everything).
        size: height and width of the images. Defaults to `None` (64 for shapes and folders,
            the native size otherwise).
        seed: seed for generating shapes and for picking subsets. Defaults to `0`.

    Returns:
        A tuple `(images, labels, class_names)`: float32 `(N, H, W, C)` in [0, 1], int32 `(N,)`
        and the list of class names that labels index into.

    Raises:
        ValueError: if `name` is neither a known dataset nor an existing folder, or `n` /
            `size` are invalid.
    """
    if n is not None:
        n = check_int(n, "n", 1, "Pass None for the default amount.")
    if size is not None:
        size = check_int(size, "size", 1, "Pass None for the default size.")
    if not isinstance(name, str):
        name = os.fspath(name)
    if name == "shapes":
        images, labels, _ = shapes(2000 if n is None else n, size or 64, seed)
        return images, labels, list(SHAPE_CLASSES)
    if name == "digits":
        images, labels = _subset(n, seed, *digits(size))
        return images, labels, [str(i) for i in range(10)]
    if name in KERAS_DATASETS:
        images, labels = keras_dataset(name, "train", n)
        if size is not None:
            images = _resize(images, size)
        return images, labels, list(KERAS_DATASETS[name])
    if os.path.isdir(name):
        images, labels, class_names = image_folder(name, size or 64)
        images, labels = _subset(n, seed, images, labels)
        return images, labels, class_names
    raise ValueError(
        f"Unknown dataset {name!r}; valid names are {list(DATASET_NAMES)}, "
        "or pass the path of an existing folder with one subfolder of images per class."
    )
