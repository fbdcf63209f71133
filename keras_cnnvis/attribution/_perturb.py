"""Results and plumbing of the faithfulness scores: the clean images' scores, baselines (zeros,
blur, mean colour), map checks, and perturbed copies batched through one compiled pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, clean_pass, run, upsample
from keras_cnnvis.attribution.targets import Target
from keras_cnnvis.model.compiled import batch_size_for

BASELINES = ("zeros", "blur", "mean")

# RISE blurs 224-pixel images with an 11x11 kernel (a sigma-5 Gaussian cut at 11 pixels).
# Scaled to 64 pixels (sigma 1.4), the trained demo CNN still gives 4 of 8 validation images
# a probability >= 0.99 (mean 0.79): insertion would start at the end. A sigma of 1/16 of
# the shorter side (4 pixels at 64, 14 at 224) brings the mean to 0.29 and keeps the colours
# and the layout.
BLUR_FRACTION = 1 / 16


@dataclass
class CurveResult:
    """A deletion or insertion curve per image and its area.

    Attributes:
        kind: `"deletion"` or `"insertion"`.
        fractions: float32 `(steps + 1,)` the fraction of pixels removed (deletion) or
            inserted (insertion) at each point, from 0 to 1.
        curves: float32 `(N, steps + 1)` the explained score at each point.
        auc: float32 `(N,)` the area under each curve: the trapezoid rule over
            `fractions` in [0, 1], so it is in the score's unit (a mean score; 0..1 for
            probabilities). Deletion: lower is better; insertion: higher is better.
        draws: 0 for given maps; for a random reference, the number of noise maps whose
            curves and areas are averaged.
    """

    kind: str
    fractions: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    draws: int = 0

    @property
    def mean_curve(self) -> np.ndarray:
        """float32 `(steps + 1,)` the curve averaged over images."""
        return self.curves.mean(axis=0)

    @property
    def mean_auc(self) -> float:
        """The area averaged over images (= the area of `mean_curve`)."""
        return float(self.auc.mean())


@dataclass
class MuFidelityResult:
    """MuFidelity per image: how well the map's sum over a removed subset predicts the drop.

    Attributes:
        correlation: float32 `(N,)` correlation over the subsets between the map's sum
            and the score drop, in [-1, 1]; NaN where either is constant (e.g. an
            all-zero map). Higher is better.
        sums: float32 `(N, nb_samples)` the map summed over each removed subset (for a
            reference, those of its last noise draw).
        drops: float32 `(N, nb_samples)` clean score minus the score with the subset set
            to the baseline.
        method: `"spearman"` or `"pearson"`.
        draws: 0 for given maps; for a random reference, the number of noise maps whose
            correlations are averaged.
    """

    correlation: np.ndarray
    sums: np.ndarray = field(repr=False)
    drops: np.ndarray = field(repr=False)
    method: str = "spearman"
    draws: int = 0

    @property
    def mean(self) -> float:
        """The correlation averaged over images (NaN images left out)."""
        valid = self.correlation[np.isfinite(self.correlation)]
        return float(valid.mean()) if valid.size else float("nan")


SCORE_NAMES = ("deletion_auc", "insertion_auc", "mu_fidelity")
"""The summary scores of `FaithfulnessScores.summary`, in order (also the callbacks' tags)."""


@dataclass
class FaithfulnessScores:
    """Deletion, insertion and MuFidelity of one set of maps (or of the random reference).

    Attributes:
        deletion: the deletion `CurveResult`.
        insertion: the insertion `CurveResult`.
        mu_fidelity: the `MuFidelityResult`.
    """

    deletion: CurveResult
    insertion: CurveResult
    mu_fidelity: MuFidelityResult

    def summary(self) -> dict[str, float]:
        """The means over images: `{"deletion_auc", "insertion_auc", "mu_fidelity"}`."""
        values = (self.deletion.mean_auc, self.insertion.mean_auc, self.mu_fidelity.mean)
        return dict(zip(SCORE_NAMES, values))


@dataclass
class Scored:
    """Checked images with their target fixed and their clean scores.

    Attributes:
        images: float32 `(N, H, W, C)`.
        target: the resolved target; class targets hold the class of each clean image.
        clean: float32 `(N,)` the explained score of each clean image.
        logits: whether scores are pre-softmax outputs.
        batch_size: images per compiled call.
    """

    images: np.ndarray
    target: Target
    clean: np.ndarray
    logits: bool
    batch_size: int


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def copies_per_call(model: keras.Model, images: np.ndarray, batch_size: int | None) -> int:
    """`batch_size` checked, or for None as many copies as the forward byte budget allows
    (`model.compiled.batch_size_for`: 256 for the demo CNN at 64x64, 25 for a 224x224
    ResNet50)."""
    if batch_size is None:
        return batch_size_for(model, images.shape[1:])
    return positive_int(batch_size, "batch_size")


def score_clean(
    model: keras.Model, images: Any, target: Any, logits: bool, batch_size: int | None
) -> Scored:
    """Checks the images and scores them once (`_common.clean_pass`): `ceil(N / batch_size)`
    compiled calls, which also fix a predicted-class target to the class of each clean
    image, so the perturbed copies are scored for the class the model gave the original.
    """
    x = check_images(model, images)
    batch_size = copies_per_call(model, x, batch_size)
    resolved, clean = clean_pass(model, x, target, logits, batch_size)
    return Scored(x, resolved, clean, bool(logits), batch_size)


def score_copies(
    model: keras.Model, scored: Scored, total: int, build: Callable[[np.ndarray], tuple]
) -> np.ndarray:
    """Scores `total` perturbed copies, built and run `batch_size` at a time.

    `build(index)` returns the copies number `index` as an `(len(index), H, W, C)` array
    and the image each one comes from; each chunk is one call of the compiled forward
    function, so `ceil(total / batch_size)` calls in all and at most `batch_size` copies
    in memory.
    """
    out = np.empty(total, np.float32)
    chunk = scored.batch_size
    for start in range(0, total, chunk):
        index = np.arange(start, min(total, start + chunk))
        copies, image = build(index)
        result = run(
            model,
            np.ascontiguousarray(copies, np.float32),
            scored.target.take(image),
            wrt=None,
            logits=scored.logits,
            batch_size=chunk,
        )
        out[index] = result.scores
    return out


def swapped_copies(
    image: np.ndarray, mask: np.ndarray, swapped: np.ndarray, kept: np.ndarray
) -> np.ndarray:
    """`np.where(mask[..., None], swapped[image], kept[image])` without gathering a whole
    image twice per copy: each run of copies of one image is filled from that image.

    Args:
        image: `(B,)` the image of each copy.
        mask: `(B, *S)` bool, True where a copy takes `swapped`.
        swapped, kept: `(N, *S, C)` per-image values.

    Returns:
        float32 `(B, *S, C)`.
    """
    out = np.empty(mask.shape + kept.shape[-1:], np.float32)
    cuts = np.flatnonzero(np.diff(image)) + 1
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(image)]):
        i = image[start]
        out[start:stop] = kept[i]
        np.copyto(out[start:stop], swapped[i], where=mask[start:stop, ..., None])
    return out


def blur(images: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian blur of each image and channel (edges extended, not zero-padded).

    The default sigma is `BLUR_FRACTION` (1/16) of the shorter side: 4 pixels at 64x64,
    14 at 224x224.
    """
    from scipy.ndimage import gaussian_filter

    images = np.asarray(images, np.float32)
    if sigma is None:
        sigma = BLUR_FRACTION * min(images.shape[1:3])
    return gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)


def baseline_images(images: np.ndarray, baseline: Any) -> np.ndarray:
    """The image each pixel is replaced with when removed: `(N, H, W, C)` float32.

    `"zeros"` is black for [0, 1] images (RISE's deletion), `"blur"` a blurred copy
    (RISE's insertion start, see `blur`), `"mean"` each image's own mean colour; a
    number, a `(C,)` colour, one `(H, W, C)` image or an `(N, H, W, C)` batch are used
    as given.

    Raises:
        ValueError: for an unknown name, a shape that does not broadcast, or NaN values.
    """
    x = np.asarray(images, np.float32)
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(x)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).copy()
        if baseline == "blur":
            return blur(x)
        raise ValueError(
            f"Unknown baseline {baseline!r}; use one of {BASELINES}, a number, a colour or "
            "an array of images."
        )
    arr = np.asarray(baseline, np.float32)
    if arr.ndim == 0 or arr.shape in ((x.shape[-1],), x.shape[1:], x.shape):
        arr = np.broadcast_to(arr, x.shape).copy()
    else:
        raise ValueError(
            f"A baseline must be a number, a ({x.shape[-1]},) colour, an image of shape "
            f"{x.shape[1:]} or a batch of shape {x.shape}; got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError("The baseline contains NaN or infinite values.")
    return arr


def check_maps(maps: Any, images: np.ndarray) -> np.ndarray:
    """Attribution maps for `images` as float32 `(N, H, W)`.

    Maps with channels are summed over them (so per-channel attributions add up per
    pixel); maps of another size are resized bilinearly to the images.

    Raises:
        ValueError: for a different number of maps, a shape that is not `(N, h, w)` or
            `(N, h, w, channels)`, or NaN values.
    """
    arr = np.asarray(keras.ops.convert_to_numpy(maps), np.float32)
    n, height, width = images.shape[:3]
    if arr.ndim == 4:
        arr = arr.sum(axis=-1)
    if arr.ndim != 3:
        raise ValueError(
            f"Maps must be (N, height, width) or (N, height, width, channels); got shape "
            f"{arr.shape}."
        )
    if len(arr) != n:
        raise ValueError(f"Got {len(arr)} maps for {n} images; pass one map per image.")
    if not np.isfinite(arr).all():
        raise ValueError("The maps contain NaN or infinite values.")
    if arr.shape[1:] != (height, width):
        arr = upsample(arr, (height, width))
    return arr


def named_maps(maps: Any, images: np.ndarray) -> tuple[list[str] | None, list[np.ndarray]]:
    """Checks one set of maps (names None) or a dict name -> maps (see `check_maps`)."""
    if not isinstance(maps, Mapping):
        return None, [check_maps(maps, images)]
    if not maps:
        raise ValueError("maps is an empty dict; pass at least one set of maps.")
    checked = []
    for name, value in maps.items():
        try:
            checked.append(check_maps(value, images))
        except ValueError as error:
            raise ValueError(f"maps[{name!r}]: {error}") from None
    return [str(name) for name in maps], checked


def by_name(names: list[str] | None, results: list) -> Any:
    """The one result for one set of maps, else a dict name -> result."""
    return results[0] if names is None else dict(zip(names, results))


def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """The rank of each pixel in its map's order, highest value first: `(N, H * W)` ints.

    Ties keep row-major order (a stable sort), so equal values are taken top-left first.
    """
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    return ranks


def noise_maps(
    n: int, height: int, width: int, seed: int, draw: int, size: int | None = None
) -> np.ndarray:
    """One seeded draw of i.i.d. uniform [0, 1) maps `(n, height, width)`.

    `size=None` draws one value per pixel; an int draws a `size` x `size` grid of values,
    each covering a block of pixels (nearest-neighbour), so whole blocks are ranked
    together like the regions of a coarse map.
    """
    rng = np.random.default_rng([int(seed), int(draw), 20])
    if size is None:
        return rng.random((n, height, width), dtype=np.float32)
    grid = rng.random((n, size, size), dtype=np.float32)
    rows = np.arange(height) * size // height
    cols = np.arange(width) * size // width
    return grid[:, rows[:, None], cols[None, :]]
