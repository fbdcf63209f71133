"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey patch over the image and record
how much the explained score drops; the occluded copies are batched through the model.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, clean_pass
from keras_cnnvis.attribution._perturb import Scored, copies_per_call, score_copies
from keras_cnnvis.attribution.registry import register


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top/left offsets of the patches along one axis; the last patch touches the border."""
    positions = list(range(0, size - patch + 1, stride))
    if positions[-1] != size - patch:
        positions.append(size - patch)
    return positions


def size_pair(value: Any, name: str) -> tuple[int, int]:
    """A patch size or stride as `(height, width)`; ValueError naming `name` if it is not
    a positive int or a pair of them."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or (height, width); got {value!r}.")
    return int(pair[0]), int(pair[1])


def occluder(
    shape: Sequence[int], patch: Any = None, stride: Any = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The patch and stride `(height, width)` for images of `shape` `(..., H, W, C)`.

    None sizes the patch to an eighth of the image side, at least 8 pixels (8 up to 64
    pixels, 28 at 224), and the stride to half the patch: about 15 positions per side on
    large images instead of 3025 positions of an 8-pixel patch on a 224-pixel image.
    """
    side = tuple(int(s) for s in shape[-3:-1])
    if patch is None:
        patch = tuple(max(8, s // 8) for s in side)
    ph, pw = size_pair(patch, "patch")
    if stride is None:
        stride = (max(1, ph // 2), max(1, pw // 2))
    return (ph, pw), size_pair(stride, "stride")


def fill_color(images: np.ndarray, fill: Any) -> np.ndarray:
    """The `(1, 1, 1, C)` colour of the occluding patch (see `occlusion`'s `fill`)."""
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


def _check_patch(size: tuple, patch: tuple, what: str) -> None:
    if patch[0] > size[0] or patch[1] > size[1]:
        raise ValueError(
            f"patch {patch} is larger than the {what} ({size[0]}x{size[1]}); choose a "
            "smaller patch."
        )


def _check_probe(
    model: keras.Model,
    probe: np.ndarray,
    patch: int | tuple | None = None,
    stride: int | tuple | None = None,
    fill: Any = "mean",
    **kwargs: Any,
) -> None:
    _check_patch(probe.shape[1:3], occluder(probe.shape, patch, stride)[0], "probe images")
    fill_color(probe, fill)


@register(
    "occlusion",
    family="occlusion",
    display="smooth",
    validate=_check_probe,
    options=("patch", "stride", "fill", "batch_size"),
)
def occlusion(
    model: keras.Model,
    images: Any,
    target: Any = None,
    patch: int | tuple | None = None,
    stride: int | tuple | None = None,
    fill: Any = "mean",
    logits: bool = False,
    batch_size: int | None = None,
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
        patch: patch size, int or `(height, width)`. Defaults to None (an eighth of the
            image side, at least 8: 8 up to 64 pixels, 28 at 224; see `occluder`).
        stride: step between patches, int or `(dy, dx)`. Defaults to None (half the
            patch).
        fill: the patch value: `"mean"` (the mean colour of `images`; pass the dataset's
            mean colour for the classic setting), a number, or a `(C,)` colour.
            Defaults to `"mean"`.
        logits: score by pre-softmax outputs (default: the outputs, e.g. probabilities
            as in Zeiler & Fergus). Defaults to False.
        batch_size: occluded copies per compiled call. Defaults to None (`model.
            compiled.batch_size_for` the model: 256 for the demo CNN, 25 for a 224x224
            ResNet50).

    Returns:
        float32 `(N, H, W)` maps (positive where occlusion lowers the score).

    Raises:
        ValueError: for a patch larger than the image, bad stride, fill, images or target.
    """
    x = check_images(model, images)
    n, height, width, _ = x.shape
    (ph, pw), (sy, sx) = occluder(x.shape, patch, stride)
    _check_patch((height, width), (ph, pw), "images")
    color = fill_color(x, fill)
    batch_size = copies_per_call(model, x, None if batch_size is None else max(1, int(batch_size)))
    # One clean pass: the scores the drops are measured from, and a predicted class fixed.
    resolved, clean = clean_pass(model, x, target, logits, batch_size)
    boxes = [
        (y, x0) for y in patch_positions(height, ph, sy) for x0 in patch_positions(width, pw, sx)
    ]
    occluded = np.zeros((len(boxes), height, width), np.float32)
    for k, (y, x0) in enumerate(boxes):
        occluded[k, y : y + ph, x0 : x0 + pw] = 1.0
    n_boxes = len(boxes)
    patch_fill = np.broadcast_to(color.reshape(-1), (ph, pw, x.shape[-1]))

    def build(index):
        # Copies of the images with the patch filled in place: the values of
        # `image * (1 - mask) + fill * mask`, without three full-size temporaries.
        img, box = index // n_boxes, index % n_boxes
        copies = x[img]
        for k, b in enumerate(box):
            y, x0 = boxes[b]
            copies[k, y : y + ph, x0 : x0 + pw] = patch_fill
        return copies, img

    scored = Scored(x, resolved, clean, bool(logits), batch_size)
    scores = score_copies(model, scored, n * n_boxes, build).reshape(n, n_boxes)
    drops = clean[:, None] - scores
    count = occluded.sum(0)
    total = np.einsum("nb,bhw->nhw", drops, occluded)
    return (total / np.maximum(count, 1)).astype(np.float32)
