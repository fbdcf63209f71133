"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey patch over the image and record
how much the explained score drops; the occluded copies are batched through the model.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, fixed_target, run


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top/left offsets of the patches along one axis; the last patch touches the border."""
    positions = list(range(0, size - patch + 1, stride))
    if positions[-1] != size - patch:
        positions.append(size - patch)
    return positions


def _pair(value: Any, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or (height, width); got {value!r}.")
    return int(pair[0]), int(pair[1])


def _fill(images: np.ndarray, fill: Any) -> np.ndarray:
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be 'mean', a number or a colour; got {fill!r}.")
        return images.mean(axis=(0, 1, 2)).reshape(1, 1, 1, -1).astype(np.float32)
    arr = np.asarray(fill, np.float32)
    if arr.ndim == 0 or arr.shape == (images.shape[-1],):
        return np.broadcast_to(arr, (images.shape[-1],)).reshape(1, 1, 1, -1)
    raise ValueError(
        f"fill must be a number or a ({images.shape[-1]},) colour; got shape {arr.shape}."
    )


def occlusion(
    model: keras.Model,
    images: Any,
    target: Any = None,
    patch: int | tuple = 8,
    stride: int | tuple = 4,
    fill: Any = "mean",
    logits: bool = False,
    batch_size: int = 256,
) -> np.ndarray:
    """Occlusion maps: the score drop when a patch around each pixel is filled.

    Every patch position gives one occluded copy of each image; its drop
    `score(image) - score(occluded)` is spread over the patch's pixels, and each pixel's
    value is the mean drop of the patches covering it. Positions step by `stride` and the
    last one touches the border, so every pixel is covered. The copies are built chunk by
    chunk and batched through one compiled forward pass, so memory stays bounded by
    `batch_size` copies.

    Example:

    ```python
    maps = occlusion(model, x_val[:4], patch=8, stride=4, fill=x_train.mean((0, 1, 2)))
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class of each unoccluded image).
        patch: patch size, int or `(height, width)`. Defaults to 8.
        stride: step between patches, int or `(dy, dx)`. Defaults to 4.
        fill: the patch value: `"mean"` (the mean colour of `images`; pass the dataset's
            mean colour for the classic setting), a number, or a `(C,)` colour.
            Defaults to `"mean"`.
        logits: score by pre-softmax outputs (default: the outputs, e.g. probabilities
            as in Zeiler & Fergus). Defaults to False.
        batch_size: occluded copies per compiled call. Defaults to 256.

    Returns:
        float32 `(N, H, W)` maps (positive where occlusion lowers the score).

    Raises:
        ValueError: for a patch larger than the image, bad stride, fill, images or target.
    """
    x = check_images(model, images)
    n, height, width, _ = x.shape
    ph, pw = _pair(patch, "patch")
    sy, sx = _pair(stride, "stride")
    if ph > height or pw > width:
        raise ValueError(f"patch {(ph, pw)} is larger than the images ({height}x{width}).")
    color = _fill(x, fill)
    resolved = fixed_target(model, x, target, logits, batch_size)
    clean = run(model, x, resolved, wrt=None, logits=logits, batch_size=batch_size).scores
    boxes = [
        (y, x0) for y in patch_positions(height, ph, sy) for x0 in patch_positions(width, pw, sx)
    ]
    occluded = np.zeros((len(boxes), height, width, 1), np.float32)
    for k, (y, x0) in enumerate(boxes):
        occluded[k, y : y + ph, x0 : x0 + pw] = 1.0
    keep = 1.0 - occluded
    n_boxes = len(boxes)
    drops = np.empty(n * n_boxes, np.float32)
    pairs = n * n_boxes
    chunk = max(1, int(batch_size))
    for start in range(0, pairs, chunk):
        stop = min(pairs, start + chunk)
        idx = np.arange(start, stop)
        img, box = idx // n_boxes, idx % n_boxes
        copies = x[img] * keep[box] + color * occluded[box]
        sub = resolved.take(img)
        scores = run(model, copies, sub, wrt=None, logits=logits, batch_size=chunk).scores
        drops[start:stop] = clean[img] - scores
    drops = drops.reshape(n, n_boxes)
    count = occluded[..., 0].sum(0)
    total = np.einsum("nb,bhw->nhw", drops, occluded[..., 0])
    return (total / np.maximum(count, 1)).astype(np.float32)
