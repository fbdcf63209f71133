"""Faithfulness of attribution maps: deletion and insertion curves (Petsiuk et al. 2018) and
MuFidelity (Bhatt et al. 2020), each with a random-map reference that shows chance level.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.attribution._perturb import (
    CurveResult,
    MuFidelityResult,
    Scored,
    baseline_images,
    check_maps,
    noise_maps,
    pixel_ranks,
    positive_int,
    score_clean,
    score_copies,
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
        copies = np.where(swap[..., None], end[image], start[image])
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
    batch_size: int = 256,
) -> CurveResult:
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
            summed, other sizes resized bilinearly to the images).
        target: what the score is (see `targets.resolve_target`). Defaults to None (the
            class each clean image is predicted as).
        steps: points of the curve after the first. Defaults to 20.
        baseline: what removed pixels become: `"zeros"` (RISE's deletion), `"blur"` (a
            Gaussian blur, sigma 1/16 of the shorter side), `"mean"` (each image's mean
            colour), a number, a `(C,)` colour or an array of images.
            Defaults to `"zeros"`.
        logits: score pre-softmax outputs instead of the model's outputs.
            Defaults to False.
        batch_size: copies per compiled call. Defaults to 256.

    Returns:
        A `CurveResult` with `kind="deletion"`.

    Raises:
        ValueError: for bad images, maps, target, baseline, `steps` or `batch_size`.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    return _curves(model, scored, [check_maps(maps, scored.images)], "deletion", steps, baseline)


def insertion_curve(
    model: keras.Model,
    images: Any,
    maps: Any,
    target: Any = None,
    steps: int = 20,
    baseline: Any = "blur",
    logits: bool = False,
    batch_size: int = 256,
) -> CurveResult:
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
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        maps: `(N, h, w)` or `(N, h, w, C)` attribution maps of `images` (channels are
            summed, other sizes resized bilinearly to the images).
        target: what the score is (see `targets.resolve_target`). Defaults to None (the
            class each clean image is predicted as).
        steps: points of the curve after the first. Defaults to 20.
        baseline: what the image starts as (see `deletion_curve`). Defaults to `"blur"`.
        logits: score pre-softmax outputs instead of the model's outputs.
            Defaults to False.
        batch_size: copies per compiled call. Defaults to 256.

    Returns:
        A `CurveResult` with `kind="insertion"`.

    Raises:
        ValueError: for bad images, maps, target, baseline, `steps` or `batch_size`.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    return _curves(model, scored, [check_maps(maps, scored.images)], "insertion", steps, baseline)


def _curves(model, scored, maps_list, kind, steps, baseline, draws=0) -> CurveResult:
    """The curve of each map set in `maps_list`, averaged (a reference's draws)."""
    height, width = scored.images.shape[1:3]
    steps = positive_int(steps, "steps")
    if steps > height * width:
        raise ValueError(f"steps must be at most the number of pixels ({height * width}).")
    base = baseline_images(scored.images, baseline)
    runs = [_curve(model, scored, maps, kind, steps, base) for maps in maps_list]
    curves = np.mean([r.curves for r in runs], axis=0).astype(np.float32)
    auc = np.mean([r.auc for r in runs], axis=0).astype(np.float32)
    return CurveResult(kind, runs[0].fractions, curves, auc, draws)


def _cells(height: int, width: int, grid_size: int) -> np.ndarray:
    rows = np.arange(height) * grid_size // height
    cols = np.arange(width) * grid_size // width
    return rows[:, None] * grid_size + cols[None, :]


def _correlation(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Row-wise correlation of two `(N, S)` arrays; NaN where a row is constant."""
    constant = (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0)
    a, b = a.astype(np.float64), b.astype(np.float64)
    if method == "spearman":
        from scipy.stats import rankdata

        a, b = rankdata(a, axis=1), rankdata(b, axis=1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    corr = (a * b).sum(axis=1) / np.where(constant, 1.0, norm)
    return np.where(constant, np.nan, np.clip(corr, -1.0, 1.0)).astype(np.float32)


def _mu_fidelity(
    model, scored, maps_list, grid_size, subset_percent, nb_samples, baseline, seed, correlation
) -> MuFidelityResult:
    """MuFidelity of each map set in `maps_list` on one set of subsets, averaged."""
    x = scored.images
    n, height, width, _ = x.shape
    grid_size = positive_int(grid_size, "grid_size", 2)
    nb_samples = positive_int(nb_samples, "nb_samples", 3)
    if grid_size > min(height, width):
        raise ValueError(f"grid_size {grid_size} exceeds the image size ({height}x{width}).")
    if not 0 < subset_percent < 1:
        raise ValueError(f"subset_percent must be in (0, 1); got {subset_percent!r}.")
    if correlation not in ("spearman", "pearson"):
        raise ValueError(f"correlation must be 'spearman' or 'pearson'; got {correlation!r}.")
    n_cells = grid_size * grid_size
    size = min(n_cells - 1, max(1, round(subset_percent * n_cells)))
    cells = _cells(height, width, grid_size)
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((n, nb_samples, n_cells)), axis=-1)[..., :size]
    removed = np.zeros((n, nb_samples, n_cells), bool)
    np.put_along_axis(removed, picks, True, axis=-1)
    base = baseline_images(x, baseline)

    def build(index):
        image, sample = index // nb_samples, index % nb_samples
        mask = removed[image, sample][:, cells]
        return np.where(mask[..., None], base[image], x[image]), image

    scores = score_copies(model, scored, n * nb_samples, build).reshape(n, nb_samples)
    drops = scored.clean[:, None] - scores
    one_hot = np.eye(n_cells, dtype=np.float64)[cells.ravel()]
    results = []
    for m in maps_list:
        cell_sums = m.reshape(n, -1).astype(np.float64) @ one_hot
        sums = np.einsum("nsc,nc->ns", removed, cell_sums)
        results.append((_correlation(sums, drops, correlation), sums))
    corr = np.mean([c for c, _ in results], axis=0).astype(np.float32)
    sums = results[-1][1].astype(np.float32)
    return MuFidelityResult(corr, sums, drops.astype(np.float32), correlation)


def mu_fidelity(
    model: keras.Model,
    images: Any,
    maps: Any,
    target: Any = None,
    grid_size: int = 9,
    subset_percent: float = 0.2,
    nb_samples: int = 200,
    baseline: Any = "zeros",
    seed: int = 0,
    correlation: str = "spearman",
    logits: bool = False,
    batch_size: int = 256,
) -> MuFidelityResult:
    """MuFidelity (Bhatt et al. 2020): does the map's sum over a region predict its effect?

    The image is cut into a `grid_size` x `grid_size` grid of cells. For each of
    `nb_samples` random subsets of `round(subset_percent * grid_size**2)` cells (drawn
    without replacement, seeded; each image gets its own subsets), the cells are set to
    the baseline and the drop of the score `score(image) - score(perturbed)` is paired
    with the map's sum over those cells. The result is the correlation of the two over
    the subsets, per image: 1 when the map ranks (Spearman) or predicts linearly
    (Pearson) every region's effect.

    Bhatt et al. define the score over subsets of a fixed size |S| and write "corr";
    Quantus's FaithfulnessCorrelation computes Pearson's coefficient on single pixels.
    The defaults follow Xplique's MuFidelity for images (a 9x9 grid, 20% of the cells,
    200 subsets, a zero baseline, Spearman's rank correlation), except that the subset
    size is fixed (as in the paper) where Xplique draws each cell independently. The
    score is the model's output (probabilities of a softmax model) unless `logits=True`;
    a class target is fixed on the clean images.

    Cost: `ceil(N / batch_size)` compiled forward calls for the clean images plus
    `ceil(nb_samples * N / batch_size)` for the perturbed copies. The drops do not depend
    on the map, so the random reference's draws reuse one set of copies.

    Example:

    ```python
    maps = saliency(model, x_val[:8])
    print(mu_fidelity(model, x_val[:8], maps).mean,
          "vs random", random_reference("mu_fidelity", model, x_val[:8]).mean)
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        maps: `(N, h, w)` or `(N, h, w, C)` attribution maps (channels summed, other
            sizes resized to the images). Signed maps are summed with their signs.
        target: what the score is (see `targets.resolve_target`). Defaults to None.
        grid_size: cells per side. Defaults to 9.
        subset_percent: fraction of the cells removed per subset, in (0, 1).
            Defaults to 0.2.
        nb_samples: number of subsets per image (at least 3). Defaults to 200.
        baseline: what removed cells become (as in `deletion_curve`).
            Defaults to `"zeros"`.
        seed: seed of the subsets. Defaults to 0.
        correlation: `"spearman"` or `"pearson"`. Defaults to `"spearman"`.
        logits: score pre-softmax outputs. Defaults to False.
        batch_size: copies per compiled call. Defaults to 256.

    Returns:
        A `MuFidelityResult`.

    Raises:
        ValueError: for bad images, maps, target, baseline or parameters.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    maps_list = [check_maps(maps, scored.images)]
    return _mu_fidelity(
        model, scored, maps_list, grid_size, subset_percent, nb_samples, baseline, seed, correlation
    )


_SCORES: dict[str, Callable] = {
    "deletion": deletion_curve,
    "insertion": insertion_curve,
    "mu_fidelity": mu_fidelity,
}


def random_reference(
    score: str | Callable,
    model: keras.Model,
    images: Any,
    target: Any = None,
    draws: int = 3,
    seed: int = 0,
    noise_size: int | None = None,
    logits: bool = False,
    batch_size: int = 256,
    **kwargs: Any,
) -> CurveResult | MuFidelityResult:
    """Chance level of a faithfulness score: the same procedure with random maps.

    Each draw is a map of i.i.d. uniform noise in [0, 1) (seeded by `seed` and the draw's
    number), one value per pixel or, with `noise_size`, per block of a coarse grid; the
    curves, areas or correlations of `draws` draws are averaged per image. A method
    whose score is not clearly better (lower for deletion, higher for insertion and
    MuFidelity) ranks pixels no better than chance. On a linear score the expected
    random deletion curve is the straight line from the clean score to the baseline's.

    The chance level depends on the noise's grain: scattered pixels and whole blocks
    disturb a CNN differently, most of all with a `"zeros"` baseline. Compare a coarse
    map (Grad-CAM, occlusion) with a reference of similar grain too.

    For MuFidelity, the subsets are drawn with `seed` as well, so a reference and a
    `mu_fidelity(..., seed=seed)` call use the same subsets and the same drops.

    Cost: one clean pass (`ceil(N / batch_size)` compiled forward calls) plus, for a
    curve, `draws * ceil(steps * N / batch_size)`; for MuFidelity `ceil(nb_samples * N /
    batch_size)` whatever `draws` (the drops do not depend on the map).

    Example:

    ```python
    chance = random_reference("deletion", model, x_val[:8], steps=20)
    print(chance.mean_auc)
    ```

    Args:
        score: `"deletion"`, `"insertion"`, `"mu_fidelity"` or one of those functions.
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what the score is. Defaults to None (the predicted class).
        draws: number of noise maps averaged. Defaults to 3.
        seed: seed of the noise maps (and MuFidelity's subsets). Defaults to 0.
        noise_size: None for one noise value per pixel, or the side of a coarse grid of
            values (each covering a block of pixels). Defaults to None.
        logits: score pre-softmax outputs. Defaults to False.
        batch_size: copies per compiled call. Defaults to 256.
        **kwargs: the score's other arguments (`steps`, `baseline`, `grid_size`, ...),
            with the same defaults.

    Returns:
        A `CurveResult` or `MuFidelityResult` with `draws` set.

    Raises:
        ValueError: for an unknown score or argument, or bad images or parameters.
    """
    import inspect

    if callable(score):
        score = next((name for name, fn in _SCORES.items() if fn is score), score)
    if score not in _SCORES:
        raise ValueError(f"Unknown score {score!r}; use one of {sorted(_SCORES)}.")
    draws = positive_int(draws, "draws")
    if noise_size is not None:
        noise_size = positive_int(noise_size, "noise_size")
    params = inspect.signature(_SCORES[score]).parameters
    extra = set(kwargs) - (set(params) - {"model", "images", "maps", "target", "seed"})
    if extra:
        raise ValueError(f"Unknown argument(s) {sorted(extra)} for the {score} reference.")
    options = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    options.update(kwargs)
    scored = score_clean(model, images, target, logits, batch_size)
    n, height, width = scored.images.shape[:3]
    noise = [noise_maps(n, height, width, seed, d, noise_size) for d in range(draws)]
    if score == "mu_fidelity":
        keys = ("grid_size", "subset_percent", "nb_samples", "baseline")
        result = _mu_fidelity(
            model, scored, noise, *(options[k] for k in keys), seed, options["correlation"]
        )
        result.draws = draws
        return result
    return _curves(model, scored, noise, score, options["steps"], options["baseline"], draws)
