"""MuFidelity (Bhatt et al. 2020): whether a map's sum over random regions predicts how much the
score drops when those regions are removed. One set of drops serves any number of maps.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
import numpy as np

from keras_cnnvis._threads import one_blas_thread
from keras_cnnvis.attribution._perturb import (
    MuFidelityResult,
    Scored,
    baseline_images,
    by_name,
    named_maps,
    positive_int,
    score_clean,
    score_copies,
    swapped_copies,
)


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


def check_subsets(
    grid_size: Any, subset_percent: Any, nb_samples: Any, correlation: Any, height: int, width: int
) -> tuple[int, int]:
    """Checks MuFidelity's parameters for `height` x `width` images; returns the grid size
    and the number of subsets as ints.

    Raises:
        ValueError: naming the parameter that is wrong.
    """
    grid_size = positive_int(grid_size, "grid_size", 2)
    nb_samples = positive_int(nb_samples, "nb_samples", 3)
    if grid_size > min(height, width):
        raise ValueError(f"grid_size {grid_size} exceeds the image size ({height}x{width}).")
    if isinstance(subset_percent, bool) or not (
        isinstance(subset_percent, numbers.Real) and 0 < subset_percent < 1
    ):
        raise ValueError(f"subset_percent must be in (0, 1); got {subset_percent!r}.")
    if correlation not in ("spearman", "pearson"):
        raise ValueError(f"correlation must be 'spearman' or 'pearson'; got {correlation!r}.")
    return grid_size, nb_samples


def mu_fidelity_runs(
    model: keras.Model,
    scored: Scored,
    maps_list: list,
    grid_size: int,
    subset_percent: float,
    nb_samples: int,
    baseline: Any,
    seed: int,
    correlation: str,
) -> list[MuFidelityResult]:
    """MuFidelity of each map set in `maps_list`, all on one set of subsets and drops."""
    x = scored.images
    n, height, width, _ = x.shape
    grid_size, nb_samples = check_subsets(
        grid_size, subset_percent, nb_samples, correlation, height, width
    )
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
        return swapped_copies(image, mask, base, x), image

    scores = score_copies(model, scored, n * nb_samples, build).reshape(n, nb_samples)
    drops = (scored.clean[:, None] - scores).astype(np.float32)
    one_hot = np.eye(n_cells, dtype=np.float64)[cells.ravel()]
    results = []
    # One BLAS thread: threaded OpenBLAS took 0.13 s for this (8 x 4096) @ (4096 x 81)
    # product next to TensorFlow's threads on 2 cores, one thread 0.3 ms.
    with one_blas_thread():
        for maps in maps_list:
            cell_sums = maps.reshape(n, -1).astype(np.float64) @ one_hot
            sums = np.einsum("nsc,nc->ns", removed, cell_sums)
            corr = _correlation(sums, drops, correlation)
            results.append(MuFidelityResult(corr, sums.astype(np.float32), drops, correlation))
    return results


def average_runs(runs: list[MuFidelityResult], draws: int) -> MuFidelityResult:
    """The correlations of several map sets averaged per image (a reference's draws)."""
    corr = np.mean([r.correlation for r in runs], axis=0).astype(np.float32)
    last = runs[-1]
    return MuFidelityResult(corr, last.sums, last.drops, last.method, draws)


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
    batch_size: int | None = None,
) -> MuFidelityResult | dict[str, MuFidelityResult]:
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
    on the map: a dict of maps (several methods) and the random reference's draws all
    use one set of copies.

    Example:

    ```python
    maps = saliency(model, x_val[:8])
    print(mu_fidelity(model, x_val[:8], maps).mean,
          "vs random", random_reference("mu_fidelity", model, x_val[:8]).mean)
    both = mu_fidelity(model, x_val[:8], {"saliency": maps, "grad_cam": cams})
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        maps: `(N, h, w)` or `(N, h, w, C)` attribution maps (channels summed, other
            sizes resized to the images), or a dict name -> such maps. Signed maps are
            summed with their signs.
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
        batch_size: copies per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model: 256 for the demo CNN, 25 for a 224x224 ResNet50).

    Returns:
        A `MuFidelityResult`, or for a dict of maps a dict name -> `MuFidelityResult`
        (same subsets and drops).

    Raises:
        ValueError: for bad images, maps, target, baseline or parameters.
    """
    scored = score_clean(model, images, target, logits, batch_size)
    names, maps_list = named_maps(maps, scored.images)
    runs = mu_fidelity_runs(
        model, scored, maps_list, grid_size, subset_percent, nb_samples, baseline, seed, correlation
    )
    return by_name(names, runs)
