"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): the explained score as the pixels a
map ranks highest are removed from the image, or put back into a blurred copy of it.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._perturb import (
    CurveResult,
    Scored,
    baseline_images,
    by_name,
    named_maps,
    pixel_ranks,
    positive_int,
    score_clean,
    score_copies,
    swapped_copies,
)


def _curve(
    model: keras.Model,
    scored: Scored,
    maps: np.ndarray,
    kind: str,
    steps: int,
    base: np.ndarray,
) -> CurveResult:
    """One curve per image: `steps` copies each, pixels swapped in the map's order."""
    x = scored.images
    n, height, width, channels = x.shape
    pixels = height * width
    counts = np.rint(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    ranks = pixel_ranks(maps)
    flat_x, flat_base = x.reshape(n, pixels, channels), base.reshape(n, pixels, channels)
    if kind == "deletion":  # the clean image is point 0, the copies points 1..steps
        start, end, points = flat_x, flat_base, np.arange(1, steps + 1)
    else:  # the clean image is the last point, the copies points 0..steps-1
        start, end, points = flat_base, flat_x, np.arange(0, steps)

    def build(index):
        image, point = index // steps, points[index % steps]
        swap = ranks[image] < counts[point][:, None]
        copies = swapped_copies(image, swap, end, start)
        return copies.reshape(len(index), height, width, channels), image

    scores = score_copies(model, scored, n * steps, build).reshape(n, steps)
    curves = np.empty((n, steps + 1), np.float32)
    if kind == "deletion":
        curves[:, 0], curves[:, 1:] = scored.clean, scores
    else:
        curves[:, :-1], curves[:, -1] = scores, scored.clean
    fractions = (counts / pixels).astype(np.float32)
    widths = np.diff(fractions.astype(np.float64))
    auc = ((curves[:, 1:] + curves[:, :-1]) * 0.5 * widths).sum(axis=1)
    return CurveResult(kind, fractions, curves, auc.astype(np.float32))


def deletion_curve(
    model: keras.Model,
    images: Any,
    maps: Any,
    target: Any = None,
    steps: int = 20,
    baseline: Any = "zeros",
    logits: bool = False,
    batch_size: int | None = None,
) -> CurveResult | dict[str, CurveResult]:
    """The deletion curve (Petsiuk et al. 2018): the score as the map's top pixels are removed.

    Pixels are ranked by the map, highest value first (signed maps by value: pass
    `abs(maps)` to rank by magnitude; ties are taken row-major), and replaced by the
    baseline in all channels, `steps` times a `1 / steps` fraction of the pixels (rounded
    to whole pixels). Removing what the model uses should make the score fall fast, so a
    lower area is a more faithful map. Point 0 is the clean image, the last one the
    baseline; compare with `random_reference("deletion", ...)`. The baseline matters:
    RISE's zeros are the default, but an object deleted to black keeps its silhouette
    (the trained demo CNN still gives all 8 shapes it was checked on a probability
    >= 0.95 with the object set to 0), so `"blur"` or `"mean"` remove more.

    The score is the target's model output, by default the probability of the explained
    class for a softmax model, as in RISE: the curve then falls towards chance instead of
    an arbitrary logit and the areas of different images share a scale (`logits=True`
    scores pre-softmax outputs). A class target is fixed on the clean images before any
    pixel changes.

    Cost: `ceil(N / batch_size)` calls of one compiled forward function for the clean
    images (which also fixes the class), plus `ceil(steps * N / batch_size)` for the
    `steps` perturbed copies of each image, built chunk by chunk (at most `batch_size`
    copies in memory).

    Example:

    ```python
    result = deletion_curve(model, x_val[:8], occlusion(model, x_val[:8]))
    chance = random_reference("deletion", model, x_val[:8])
    print(result.mean_auc, "vs random", chance.mean_auc)   # lower is better
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        maps: `(N, h, w)` or `(N, h, w, C)` attribution maps of `images` (channels are
            summed, other sizes resized bilinearly to the images), or a dict name -> such
            maps (one clean pass and one baseline for all).
        target: what the score is (see `targets.resolve_target`). Defaults to None (the
            class each clean image is predicted as).
        steps: points of the curve after the first. Defaults to 20.
        baseline: what removed pixels become: `"zeros"` (RISE's deletion), `"blur"` (a
            Gaussian blur, sigma 1/16 of the shorter side), `"mean"` (each image's mean
            colour), a number, a `(C,)` colour or an array of images.
            Defaults to `"zeros"`.
        logits: score pre-softmax outputs instead of the model's outputs.
            Defaults to False.
        batch_size: copies per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model: 256 for the demo CNN, 25 for a 224x224 ResNet50).

    Returns:
        A `CurveResult` with `kind="deletion"`, or for a dict of maps a dict name ->
        `CurveResult`.

    Raises:
        ValueError: for bad images, maps, target, baseline, `steps` or `batch_size`.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    names, maps_list = named_maps(maps, scored.images)
    return by_name(names, curve_runs(model, scored, maps_list, "deletion", steps, baseline))


def insertion_curve(
    model: keras.Model,
    images: Any,
    maps: Any,
    target: Any = None,
    steps: int = 20,
    baseline: Any = "blur",
    logits: bool = False,
    batch_size: int | None = None,
) -> CurveResult | dict[str, CurveResult]:
    """The insertion curve (Petsiuk et al. 2018): the score as the map's top pixels are added.

    Starting from the baseline (by default a blurred copy of each image, as in RISE), the
    original pixels are put back in the map's order, highest value first (ties
    row-major), `steps` times a `1 / steps` fraction of the pixels. The score should rise
    fast, so a higher area is a more faithful map. Point 0 is the baseline, the last one
    the clean image; compare with `random_reference("insertion", ...)`. The score, the
    fixed class and the cost are those of `deletion_curve`: `ceil(N / batch_size)` +
    `ceil(steps * N / batch_size)` compiled forward calls.

    Example:

    ```python
    result = insertion_curve(model, x_val[:8], grad_cam(model, x_val[:8]))
    print(result.mean_auc)   # higher is better
    ```

    Args:
        model, images, maps, target, steps, logits, batch_size: as in `deletion_curve`.
        baseline: what the image starts as (the names and values of `deletion_curve`).
            Defaults to `"blur"`.

    Returns:
        A `CurveResult` with `kind="insertion"`, or for a dict of maps a dict name ->
        `CurveResult`.

    Raises:
        ValueError: for bad images, maps, target, baseline, `steps` or `batch_size`.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    names, maps_list = named_maps(maps, scored.images)
    return by_name(names, curve_runs(model, scored, maps_list, "insertion", steps, baseline))


def check_steps(steps: Any, height: int, width: int) -> int:
    """`steps` as an int in [1, height * width], else a ValueError."""
    steps = positive_int(steps, "steps")
    if steps > height * width:
        raise ValueError(f"steps must be at most the number of pixels ({height * width}).")
    return steps


def curve_runs(model, scored, maps_list, kind, steps, baseline) -> list[CurveResult]:
    """The curve of each map set in `maps_list`, on one baseline."""
    steps = check_steps(steps, *scored.images.shape[1:3])
    base = baseline_images(scored.images, baseline)
    return [_curve(model, scored, maps, kind, steps, base) for maps in maps_list]


def average_curves(runs: list[CurveResult], draws: int) -> CurveResult:
    """Curves and areas of several map sets averaged per image (a reference's draws)."""
    curves = np.mean([r.curves for r in runs], axis=0).astype(np.float32)
    auc = np.mean([r.auc for r in runs], axis=0).astype(np.float32)
    return CurveResult(runs[0].kind, runs[0].fractions, curves, auc, draws)
