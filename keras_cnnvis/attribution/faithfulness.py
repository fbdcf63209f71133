"""Faithfulness of attribution maps: deletion and insertion curves (Petsiuk et al. 2018) and
MuFidelity (Bhatt et al. 2020), each with a random-map reference that shows chance level, and
all three for several methods at once with shared forward passes.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import keras
import numpy as np

from keras_cnnvis.attribution._perturb import (
    SCORE_NAMES,
    CurveResult,
    FaithfulnessScores,
    MuFidelityResult,
    baseline_images,
    named_maps,
    noise_maps,
    positive_int,
    score_clean,
)
from keras_cnnvis.attribution.deletion_insertion import (
    average_curves,
    check_steps,
    curve_runs,
    deletion_curve,
    insertion_curve,
)
from keras_cnnvis.attribution.mu_fidelity import (
    average_runs,
    check_subsets,
    mu_fidelity,
    mu_fidelity_runs,
)

__all__ = [
    "CurveResult",
    "FaithfulnessScores",
    "MuFidelityResult",
    "RANDOM",
    "SCORE_NAMES",
    "deletion_curve",
    "faithfulness_scores",
    "faithfulness_settings",
    "insertion_curve",
    "mu_fidelity",
    "random_reference",
]

RANDOM = "random"
"""The name of the random-map reference among the results of `faithfulness_scores`."""


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
    batch_size: int | None = None,
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
        batch_size: copies per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model: 256 for the demo CNN, 25 for a 224x224 ResNet50).
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
        runs = mu_fidelity_runs(
            model, scored, noise, *(options[k] for k in keys), seed, options["correlation"]
        )
        return average_runs(runs, draws)
    runs = curve_runs(model, scored, noise, score, options["steps"], options["baseline"])
    return average_curves(runs, draws)


def faithfulness_scores(
    model: keras.Model,
    images: Any,
    maps: Mapping[str, Any],
    target: Any = None,
    steps: int = 20,
    baseline: Any = "blur",
    grid_size: int = 9,
    subset_percent: float = 0.2,
    nb_samples: int = 200,
    draws: int = 3,
    noise_size: int | None = None,
    seed: int = 0,
    correlation: str = "spearman",
    logits: bool = False,
    batch_size: int | None = None,
) -> dict[str, FaithfulnessScores]:
    """Deletion, insertion and MuFidelity of several methods' maps and of random maps at once.

    Equal to calling `deletion_curve`, `insertion_curve` and `mu_fidelity` on each set of
    maps (with `seed`) and `random_reference` for each score, but with one clean pass and
    one set of MuFidelity copies for every map and noise draw: the cost is
    `ceil(N / batch_size)` + `2 * (M + draws) * ceil(steps * N / batch_size)` +
    `ceil(nb_samples * N / batch_size)` compiled forward calls for `M` methods.

    One `baseline` serves all three scores, `"blur"` by default: removed pixels and cells
    become a blurred copy of the image and insertion starts from it. A zero baseline
    leaves an object's silhouette (on `shapes`, occlusion's deletion area then barely
    beats random blocks of noise: 0.224 vs 0.225 on 16 images), a blur removes shape and
    texture without depending on the input range (zeros are black only for [0, 1]
    images). With a blur the reference hardly depends on the noise grain (pixels or 8x8
    blocks: within 0.04 on the trained demo CNN).

    Example:

    ```python
    scores = faithfulness_scores(model, x_val[:8], {"grad_cam": cams, "saliency": grads})
    for name, s in scores.items():   # "grad_cam", "saliency", "random"
        print(name, s.summary())
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        maps: a dict name -> `(N, h, w)` or `(N, h, w, C)` maps of `images`.
        target: what the score is (see `targets.resolve_target`). Defaults to None (the
            class each clean image is predicted as).
        steps: points of each curve after the first. Defaults to 20.
        baseline: what removed pixels become and insertion starts from (see
            `deletion_curve`). Defaults to `"blur"`.
        grid_size: MuFidelity's cells per side. Defaults to 9.
        subset_percent: MuFidelity's fraction of cells per subset. Defaults to 0.2.
        nb_samples: MuFidelity's subsets per image. Defaults to 200.
        draws: noise maps averaged in the random reference; 0 leaves it out.
            Defaults to 3.
        noise_size: the reference's noise grain (see `random_reference`).
            Defaults to None (one value per pixel).
        seed: seed of MuFidelity's subsets and of the noise. Defaults to 0.
        correlation: `"spearman"` or `"pearson"`. Defaults to `"spearman"`.
        logits: score pre-softmax outputs. Defaults to False.
        batch_size: copies per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model: 256 for the demo CNN, 25 for a 224x224 ResNet50).

    Returns:
        A dict name -> `FaithfulnessScores` in the order of `maps`, then `RANDOM`
        (`"random"`) for the reference when `draws > 0`.

    Raises:
        ValueError: for maps that are not a dict or use the name `"random"`, and for bad
            images, maps, target, baseline or parameters.
    """
    if not isinstance(maps, Mapping):
        raise ValueError(
            "faithfulness_scores takes a dict name -> maps; for one set of maps call "
            "deletion_curve, insertion_curve and mu_fidelity."
        )
    if RANDOM in maps:
        raise ValueError(f"'{RANDOM}' names the random reference; give the maps another name.")
    draws = positive_int(draws, "draws", 0)
    if noise_size is not None:
        noise_size = positive_int(noise_size, "noise_size")
    scored = score_clean(model, images, target, logits, batch_size)
    names, maps_list = named_maps(maps, scored.images)
    n, height, width = scored.images.shape[:3]
    maps_list += [noise_maps(n, height, width, seed, d, noise_size) for d in range(draws)]
    base = baseline_images(scored.images, baseline)  # once (a blur) for the three scores
    deletion = curve_runs(model, scored, maps_list, "deletion", steps, base)
    insertion = curve_runs(model, scored, maps_list, "insertion", steps, base)
    mu = mu_fidelity_runs(
        model, scored, maps_list, grid_size, subset_percent, nb_samples, base, seed, correlation
    )
    out = {
        name: FaithfulnessScores(deletion[i], insertion[i], mu[i]) for i, name in enumerate(names)
    }
    if draws:
        k = len(names)
        out[RANDOM] = FaithfulnessScores(
            average_curves(deletion[k:], draws),
            average_curves(insertion[k:], draws),
            average_runs(mu[k:], draws),
        )
    return out


def faithfulness_settings(images: Any = None, **settings: Any) -> dict[str, Any]:
    """The complete, checked settings of `faithfulness_scores`, without running a model.

    Lets a caller (the attribution callbacks) report a bad setting before any work runs.

    Example:

    ```python
    faithfulness_settings(x_val[:8], steps=10, nb_samples=50)
    # {"steps": 10, "baseline": "blur", "grid_size": 9, ..., "nb_samples": 50, ...}
    ```

    Args:
        images: the `(N, H, W, C)` images the scores will run on, to check the settings
            against their size and channels; None checks the names only.
            Defaults to None.
        **settings: arguments of `faithfulness_scores` other than `model`, `images`,
            `maps` and `target`.

    Returns:
        A dict of every such argument: the given values over the defaults.

    Raises:
        ValueError: for an unknown name or a bad value.
    """
    import inspect

    params = inspect.signature(faithfulness_scores).parameters
    known = {
        k: p.default for k, p in params.items() if k not in ("model", "images", "maps", "target")
    }
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"Unknown faithfulness setting(s) {unknown}; use some of {sorted(known)}.")
    out = {**known, **settings}
    positive_int(out["draws"], "draws", 0)
    if out["batch_size"] is not None:
        positive_int(out["batch_size"], "batch_size")
    if out["noise_size"] is not None:
        positive_int(out["noise_size"], "noise_size")
    if images is not None:
        x = np.asarray(images, np.float32)
        height, width = x.shape[1:3]
        check_steps(out["steps"], height, width)
        keys = ("grid_size", "subset_percent", "nb_samples", "correlation")
        check_subsets(*(out[k] for k in keys), height, width)
        baseline_images(x, out["baseline"])
    return out
