"""The published corrupted test sets, read as distributed: CIFAR-10-C and CIFAR-100-C (one
`.npy` per corruption, the five severities stacked) and Tiny-ImageNet-C (JPEG folders).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from keras_cnnvis.robustness.corruptions import check_name, check_severity

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def load_corrupted(path: str, name: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one corruption and severity of a published corrupted set.

    Two layouts, as published by Hendrycks & Dietterich:

    - CIFAR-10-C / CIFAR-100-C: `path/<name>.npy`, uint8 `(5 * M, 32, 32, 3)` with the
      severities 1-5 stacked in blocks of `M` images (M = 10000: the test set, in order),
      and `path/labels.npy` with one label per row.
    - Tiny-ImageNet-C: `path/<name>/<severity>/<class folder>/*.JPEG`; the label is the
      class folder's index among the sorted folder names (the order of torchvision's
      `ImageFolder`, used by the reference evaluation).

    Example:

    ```python
    x, y = load_corrupted("data/CIFAR-10-C", "gaussian_noise", 5)  # (10000, 32, 32, 3)
    ```

    Args:
        path: the folder of the set (holding `labels.npy`, or one folder per corruption).
        name: the corruption, one of `CORRUPTIONS`.
        severity: 1 to 5.

    Returns:
        `(images, labels)`: float32 `(M, H, W, 3)` in [0, 1] and int64 `(M,)`.

    Raises:
        FileNotFoundError: if the folder, the corruption's file or folder, or
            `labels.npy` is missing (the message lists what is there).
        ValueError: for an unknown corruption, a severity outside 1-5, or files not in
            the published layout.
    """
    check_name(name)
    severity = check_severity(severity)
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"No folder {path!r}; pass the folder of CIFAR-10-C (with labels.npy and one "
            ".npy per corruption) or of Tiny-ImageNet-C (one folder per corruption)."
        )
    array = os.path.join(path, f"{name}.npy")
    if os.path.isfile(array):
        return _load_npy(path, array, severity)
    folder = os.path.join(path, name)
    if os.path.isdir(folder):
        return _load_folders(folder, severity)
    present = sorted(
        entry[:-4] if entry.endswith(".npy") else entry
        for entry in os.listdir(path)
        if entry != "labels.npy"
    )
    raise FileNotFoundError(
        f"{path!r} has neither {name}.npy (CIFAR-10-C layout) nor a folder {name}/ "
        f"(Tiny-ImageNet-C layout); it has: {', '.join(present) or 'nothing'}."
    )


def _to_unit(images: np.ndarray, where: str) -> np.ndarray:
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255
    if images.dtype.kind == "f" and images.size and 0 <= images.min() and images.max() <= 1:
        return images.astype(np.float32)
    raise ValueError(f"{where} holds {images.dtype} pixels; the published sets are uint8 (0-255).")


def _load_npy(path: str, array: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    labels_file = os.path.join(path, "labels.npy")
    if not os.path.isfile(labels_file):
        raise FileNotFoundError(
            f"{path!r} has no labels.npy; the CIFAR-10-C layout has one label per row of "
            "every corruption's .npy."
        )
    images = np.load(array, mmap_mode="r")
    labels = np.load(labels_file, mmap_mode="r")
    if images.ndim != 4 or len(images) % 5:
        raise ValueError(
            f"{array} has shape {images.shape}; the published layout is (5 * M, H, W, C): "
            "five severities of M images stacked."
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels.npy has shape {labels.shape}; expected one label per row of "
            f"{os.path.basename(array)} ({len(images)},)."
        )
    block = len(images) // 5
    rows = slice((severity - 1) * block, severity * block)
    return _to_unit(np.asarray(images[rows]), array), np.asarray(labels[rows]).astype(np.int64)


def _load_folders(folder: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    level = os.path.join(folder, str(severity))
    if not os.path.isdir(level):
        there = sorted(e for e in os.listdir(folder) if os.path.isdir(os.path.join(folder, e)))
        raise FileNotFoundError(
            f"No folder {level!r} (Tiny-ImageNet-C layout: <corruption>/<severity>/<class>/); "
            f"severities there: {', '.join(there) or 'none'}."
        )
    classes = sorted(e for e in os.listdir(level) if os.path.isdir(os.path.join(level, e)))
    images, labels = [], []
    for index, cls in enumerate(classes):
        directory = os.path.join(level, cls)
        for file in sorted(os.listdir(directory)):
            if not file.lower().endswith(IMAGE_EXTENSIONS):
                continue
            image = cv2.imread(os.path.join(directory, file), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"Cannot read {os.path.join(directory, file)} as an image.")
            images.append(image[..., ::-1])
            labels.append(index)
    if not images:
        raise ValueError(f"No images in the class folders of {level!r}.")
    if len({im.shape for im in images}) != 1:
        raise ValueError(f"The images of {level!r} differ in size; the published ones do not.")
    return _to_unit(np.stack(images), level), np.asarray(labels, np.int64)
