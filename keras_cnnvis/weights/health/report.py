"""`filter_health`: the health report of a model's weight layers (structure vs noise, dead and
saturated units, drift and update ratio, spectral signals, a verdict per layer): which layers,
which earlier weights and probe outputs go into `layer_health`, and the report that holds them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Iterator

import keras
import numpy as np

from keras_cnnvis.inputs import check_images
from keras_cnnvis.model import FeatureExtractor, LayerInfo, find_layers, iter_layers
from keras_cnnvis.model.layers import is_trainable
from keras_cnnvis.weights.health import activity, structure
from keras_cnnvis.weights.health.layer import (  # noqa: F401 (the old report module had them)
    SCALARS,
    LayerHealth,
    layer_health,
)
from keras_cnnvis.weights.kernels import has_kernel, kernel_array, layer_kernel


class HealthReport(Mapping):
    """The `LayerHealth` of each scored layer, by path (also looked up by bare name).

    Example:

    ```python
    report = filter_health(model, probe=x_val[:32])
    print(report.table())
    report["conv1"].verdict
    ```
    """

    def __init__(self, layers: dict[str, LayerHealth]):
        self._layers = dict(layers)

    def __getitem__(self, key: str) -> LayerHealth:
        if key in self._layers:
            return self._layers[key]
        matches = [h for p, h in self._layers.items() if p.split("/")[-1] == key]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def unhealthy(self) -> list[LayerHealth]:
        """Layers with at least one problem, in model order."""
        return [h for h in self._layers.values() if h.problems]

    def non_converged(self) -> list[LayerHealth]:
        """Layers that look non-converged, in model order (frozen layers only with
        non-finite weights)."""
        return [h for h in self._layers.values() if not h.converged]

    def frozen(self) -> list[LayerHealth]:
        """Layers `model.fit` does not train (frozen), in model order."""
        return [h for h in self._layers.values() if h.frozen]

    def table(self) -> str:
        """A plain-text table: one line per layer with the key scores and the verdict."""
        head = (
            "layer",
            "type",
            "kernel",
            "filters",
            "noise-like",
            "dead",
            "drift",
            "update",
            "alpha",
            "spike",
            "verdict",
        )
        lines = [head]
        for h in self._layers.values():
            e = h.evidence
            kh, kw = h.kernel_size
            lines.append(
                (
                    h.layer,
                    h.layer_type,
                    f"{kh}x{kw}" if kh else "-",
                    str(h.n_filters),
                    _count(e.get("noise_like_filters"), e.get("tested_filters")),
                    _count(e.get("dead_units"), e.get("n_units")),
                    _num(e.get("mean_drift")),
                    _num(e.get("median_update_ratio")),
                    _num(e.get("spectral_alpha"), 1),
                    _num(e.get("spike_ratio"), 2),
                    h.verdict,
                )
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(head) - 1)]
        out = []
        for row in lines:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths)]
            out.append("  ".join(cells + [row[-1]]))
        return "\n".join(out)


def _count(k: Any, n: Any) -> str:
    return "-" if k is None or n is None else f"{int(k)}/{int(n)}"


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return "nan" if x != x else "inf"
    return f"{x:.{digits}f}" if digits < 3 else f"{x:.3g}"


def health_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer `filter_health` scores by default: 2-D convolutions of any kind and Dense
    layers, in forward order (nested models included)."""
    return [i for i in iter_layers(model) if has_kernel(i.layer) and i.layer.built]


def scored_layers(model: keras.Model, layer: Any = None) -> list[LayerInfo]:
    """The layers `filter_health` scores: the given ones, or every one of `health_layers`.

    Raises:
        ValueError: for unknown layers, layers without a kernel (the message names the
            kinds that have one), or a model without any weight layer.
    """
    if layer is not None:
        infos = find_layers(model, layer)
        for info in infos:
            layer_kernel(model, info.layer)  # raises for a layer without a kernel
        return infos
    infos = health_layers(model)
    if not infos:
        raise ValueError(
            f"Model '{model.name}' has no layer with a kernel (Conv2D, "
            "Conv2DTranspose, DepthwiseConv2D, SeparableConv2D or Dense)."
        )
    return infos


def snapshot_kernels(model: keras.Model, layers: Any = None) -> dict[str, np.ndarray]:
    """Copies the kernels of weight layers, to pass later as `initial_weights` or
    `previous_weights` of `filter_health`.

    Example:

    ```python
    initial = snapshot_kernels(model)
    model.fit(x, y, epochs=5)
    report = filter_health(model, initial_weights=initial)
    ```

    Args:
        model: a Keras model of any kind.
        layers: layer references. Defaults to None (every layer `filter_health` scores).

    Returns:
        A dict from layer path to a float32 copy of its kernel variable.
    """
    infos = health_layers(model) if layers is None else find_layers(model, layers)
    return {info.path: kernel_array(info) for info in infos}


def _weights_for(source: Any, model: keras.Model, info: LayerInfo, what: str) -> np.ndarray | None:
    """The kernel for `info` from a snapshot dict or a model with the same layers."""
    if source is None:
        return None
    if isinstance(source, keras.Model):
        try:
            other = find_layers(source, info.path)[0]
        except ValueError as error:
            raise ValueError(
                f"{what} model '{source.name}' has no layer '{info.path}': {error}"
            ) from None
        return kernel_array(other)
    if not isinstance(source, Mapping):
        raise ValueError(
            f"{what} must be a dict from layer path to kernel array (see "
            f"snapshot_kernels) or a model with the same layers; got {type(source).__name__}."
        )
    for key in (info.path, info.name):
        if key in source:
            return np.asarray(source[key], np.float32)
    return None


def filter_health(
    model: keras.Model,
    layer: Any = None,
    probe: Any = None,
    initial_weights: Any = None,
    previous_weights: Any = None,
    alpha: float = structure.ALPHA,
    batch_size: int = 64,
    extractor: FeatureExtractor | None = None,
) -> HealthReport:
    """Diagnoses weight layers: structured or noise-like filters, dead and saturated units,
    drift from initialisation, update ratio, spectral signals, and a verdict per layer.

    Definitions and thresholds: `keras_cnnvis.weights.health.structure` (noise test),
    `.activity` (dead/saturated), `.drift` (movement), `.spectral` (alpha, spikes) and
    `.verdict` (the rules). NaN/inf weights are reported as such, never raised. Layers
    `model.fit` does not train (`trainable=False` on them or on a model around them, see
    `keras_cnnvis.model.layers.is_trainable`) get the verdict `frozen` and never count as
    non-converged for lack of training. With probe images each layer's output RMS is also
    compared with the images' (`signal_gain`, "vanishing signal" below 1e-6).

    Example:

    ```python
    initial = snapshot_kernels(model)
    model.fit(x, y, epochs=5)
    report = filter_health(model, probe=x_val[:32], initial_weights=initial)
    print(report.table())
    ```

    Args:
        model: a Keras model of any kind with one image input.
        layer: a layer reference or a list of them. Defaults to None (every 2-D
            convolution and Dense layer).
        probe: images `(N, H, W, C)` for dead/saturated units. Defaults to None (not
            scored).
        initial_weights: kernels at initialisation: a dict from layer path (or name) to
            the kernel array (see `snapshot_kernels`), or a model with the same layers.
            Defaults to None (no drift).
        previous_weights: kernels at the previous record (usually the previous epoch),
            same forms. Defaults to None (no update ratio).
        alpha: significance level of the per-filter structure test. Defaults to 0.01.
        batch_size: probe images per compiled call. Defaults to 64.
        extractor: a `FeatureExtractor` over exactly these layers to reuse (callbacks keep
            one). Defaults to None (a new one when `probe` is given).

    Returns:
        A `HealthReport` (a mapping from layer path to `LayerHealth`).

    Raises:
        ValueError: for unknown layers, layers without a kernel (the message names the
            kinds that have one), probe images of the wrong shape, or weights of the
            wrong shape.
    """
    infos = scored_layers(model, layer)
    kernels = [layer_kernel(model, info.layer) for info in infos]
    outputs: list[np.ndarray | None] = [None] * len(infos)
    input_rms = None
    if probe is not None:
        images = check_images(probe, model, "probe images", single=True)
        input_rms = float(np.sqrt(np.mean(np.square(images, dtype=np.float64))))
        if extractor is None:
            extractor = FeatureExtractor(model, [i.layer for i in infos], batch_size)
        feats, _ = extractor(images)
        outputs = list(feats)
    result = {}
    for info, k, out in zip(infos, kernels, outputs):
        ini = _weights_for(initial_weights, model, info, "initial_weights")
        prev = _weights_for(previous_weights, model, info, "previous_weights")
        result[info.path] = layer_health(
            k,
            trainable=is_trainable(model, info.layer),
            outputs=out,
            activation=activity.activation_name(info.layer),
            initial=None if ini is None else layer_kernel(model, info.layer, raw=ini),
            previous=None if prev is None else layer_kernel(model, info.layer, raw=prev),
            alpha=alpha,
            input_rms=input_rms,
        )
    return HealthReport(result)
