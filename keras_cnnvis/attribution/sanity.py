"""The model-parameter randomisation test of Adebayo et al. 2018: re-initialise the weights
layer by layer from the top and measure how much an attribution method's maps change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.attribution._common import check_images, fixed_target
from keras_cnnvis.attribution.registry import get_method
from keras_cnnvis.model import find_layers, iter_layers


@dataclass
class SanityResult:
    """Similarity of the maps of a progressively randomised model to the original maps.

    Attributes:
        method: the method's name.
        layers: the randomised layers, top first; row `i` is the model with layers
            `0..i` re-initialised (cascading).
        spearman: `(len(layers), N)` Spearman rank correlation of `|map|` with the
            original `|map|`.
        ssim: `(len(layers), N)` structural similarity of the maps scaled to [0, 1].
        threshold: mean SSIM below which maps count as changed (see `passed`).
        original: the maps of the trained model.
    """

    method: str
    layers: list
    spearman: np.ndarray
    ssim: np.ndarray
    threshold: float = 0.5
    original: np.ndarray = field(default=None, repr=False)

    @property
    def mean_spearman(self) -> np.ndarray:
        """Mean rank correlation per randomisation stage."""
        return np.nanmean(self.spearman, axis=1)

    @property
    def mean_ssim(self) -> np.ndarray:
        """Mean SSIM per randomisation stage."""
        return np.nanmean(self.ssim, axis=1)

    @property
    def changed_at(self) -> int | None:
        """The first stage (0 = top layer randomised) whose mean SSIM is below
        `threshold`, or None if the maps never change that much."""
        below = np.flatnonzero(self.mean_ssim < self.threshold)
        return int(below[0]) if below.size else None

    @property
    def passed(self) -> bool:
        """Whether the maps depend on the learned weights of the upper layers: their mean
        SSIM with the original maps falls below `threshold` while no more than the top
        half of the layers (rounded down) is randomised. Methods that fail (guided
        backprop in Adebayo et al.) stay similar until lower layers are randomised, i.e.
        they mostly show the input. A heuristic summary: read the table too."""
        return self.changed_at is not None and self.changed_at < len(self.layers) // 2

    def table(self) -> str:
        """A plain-text table: randomised-down-to layer, mean Spearman, mean SSIM."""
        lines = [f"{self.method}: cascading randomisation (top layer first)"]
        lines.append(f"{'randomised down to':<24}{'spearman':>10}{'ssim':>10}")
        for name, rho, s in zip(self.layers, self.mean_spearman, self.mean_ssim):
            lines.append(f"{name:<24}{rho:>10.3f}{s:>10.3f}")
        lines.append("passes" if self.passed else "FAILS (maps barely depend on the upper layers)")
        return "\n".join(lines)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.abs(a).ravel(), np.abs(b).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(spearmanr(a, b)[0])


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from skimage.metrics import structural_similarity
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sanity_check needs scikit-image for SSIM: pip install scikit-image"
        ) from error

    def unit(m):
        m = np.abs(m)
        top = m.max()
        return m / top if top > 0 else m

    side = min(a.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return float("nan")
    return float(structural_similarity(unit(a), unit(b), data_range=1.0, win_size=win))


def weight_layers(model: keras.Model) -> list:
    """Layers with trainable weights, in forward order (nested models descended into)."""
    return [
        info
        for info in iter_layers(model)
        if not isinstance(info.layer, keras.Model) and info.layer.trainable_weights
    ]


def _randomise(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    for variable in layer.trainable_weights:
        value = keras.ops.convert_to_numpy(variable)
        std = float(value.std()) or (1.0 / np.sqrt(max(1, value.shape[0])))
        variable.assign(rng.normal(0.0, std, value.shape).astype(value.dtype))


def sanity_check(
    method: Callable | str,
    model: keras.Model,
    images: Any,
    target: Any = None,
    layers: Any = None,
    seed: int = 0,
    threshold: float = 0.5,
    **method_kwargs: Any,
) -> SanityResult:
    """Cascading model-parameter randomisation: do the maps depend on what was learned?

    Starting from the top (output) layer, each weight layer in turn is re-initialised with
    Gaussian values of the same standard deviation as its trained weights, keeping the
    layers above it randomised, and the method is run again on the same images for the
    same classes. A method that explains the model should produce very different maps
    once the weights are random; one that mainly reflects the input (guided backprop is
    the known case) stays similar. The model's weights are changed in place and always
    restored, also on error; compiled functions are reused (weights are variables).

    Example:

    ```python
    result = sanity_check("grad_cam", model, x_val[:16])
    print(result.table())
    ```

    Args:
        method: an attribution function or its name.
        model: the trained model (restored before returning).
        images: float `(N, H, W, C)` batch.
        target: what to explain; class targets are fixed on the trained model.
            Defaults to None (the predicted class).
        layers: the layers to randomise, in order; default every layer with weights,
            from the top down. Defaults to None.
        seed: seed of the random weights. Defaults to 0.
        threshold: mean SSIM below which maps count as changed (see
            `SanityResult.passed`). Defaults to 0.5.
        **method_kwargs: further arguments of the method.

    Returns:
        A `SanityResult`.

    Raises:
        ValueError: for a bad method name, images or layers.
    """
    name = method if isinstance(method, str) else getattr(method, "__name__", "method")
    fn = get_method(method)
    x = check_images(model, images)
    order = list(reversed(weight_layers(model))) if layers is None else find_layers(model, layers)
    if not order:
        raise ValueError(f"Model '{model.name}' has no layer with trainable weights.")
    logits = method_kwargs.pop("logits", True)
    resolved = fixed_target(model, x, target, logits)
    kwargs = dict(method_kwargs, logits=logits) if "logits" in _params(fn) else method_kwargs
    original = fn(model, x, target=resolved, **kwargs)
    saved = [(v, keras.ops.convert_to_numpy(v)) for v in model.weights]
    rng = np.random.default_rng(seed)
    rhos, ssims = [], []
    try:
        for info in order:
            _randomise(info.layer, rng)
            maps = fn(model, x, target=resolved, **kwargs)
            rhos.append([_spearman(a, b) for a, b in zip(original, maps)])
            ssims.append([_ssim(a, b) for a, b in zip(original, maps)])
    finally:
        for variable, value in saved:
            variable.assign(value)
    return SanityResult(
        name,
        [info.path for info in order],
        np.asarray(rhos, np.float32),
        np.asarray(ssims, np.float32),
        threshold,
        original,
    )


def _params(fn: Callable) -> set:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
