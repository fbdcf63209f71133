"""Rendering of attribution maps: display scaling by each method's style, heatmap overlays on
the probe images, and the `json/attribution/<method>` record of the cnnvis tab (with the maps'
faithfulness scores when they were computed).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_cnnvis.rendering import image

MAX_MAP_SIDE = 64
"""The largest side of the maps stored in `json/attribution/<method>` records."""

PERCENTILES = {"smooth": 100.0, "gradient": 99.0}
"""Display style -> the percentile of `|map|` shown at full intensity: smooth maps (the CAM
family, occlusion) by their maximum; spiky gradient maps by their 99th percentile, as is
usual for saliency displays."""


def display_style(display: str) -> str:
    """`display` if it is a style (`"smooth"`, `"gradient"`), else the style of the
    registered method of that name.

    Raises:
        ValueError: for a name that is neither a style nor a registered method.
    """
    if display in PERCENTILES:
        return display
    from keras_cnnvis.attribution.registry import REGISTRY

    if display not in REGISTRY:
        raise ValueError(
            f"Unknown display {display!r}; use one of {tuple(PERCENTILES)} or the name of a "
            "registered attribution method."
        )
    return REGISTRY[display].display


def display_maps(maps: np.ndarray, display: str = "gradient") -> np.ndarray:
    """Scales `(N, H, W)` maps to [0, 1] by magnitude for display, one scale per map.

    Example:

    ```python
    shown = display_maps(grad_cam(model, x), "grad_cam")   # each map's maximum -> 1
    ```

    Args:
        maps: `(N, H, W)` attribution maps (signed maps count by magnitude).
        display: `"smooth"` (scale by the maximum), `"gradient"` (by the 99th
            percentile), or a registered method's name (its style).
            Defaults to `"gradient"`.

    Returns:
        float32 `(N, H, W)` maps in [0, 1]; an all-zero map stays zero.

    Raises:
        ValueError: for an unknown display style or method.
    """
    mags = np.abs(np.asarray(maps, np.float32))
    q = PERCENTILES[display_style(display)]
    top = np.percentile(mags.reshape(len(mags), -1), q, axis=1).reshape(-1, 1, 1)
    return np.clip(np.where(top > 0, mags / np.where(top > 0, top, 1), 0), 0, 1).astype(np.float32)


def map_size(height: int, width: int, limit: int = MAX_MAP_SIDE) -> tuple[int, int]:
    """The stored size of a map: the probe size, shrunk to fit `limit` x `limit`."""
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def overlays(images: np.ndarray, maps: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour-mapped `(N, h, w)` maps in [0, 1] over `(N, H, W, C)` displayable images.

    Returns:
        float32 `(N, H, W, 3)` images in [0, 1].
    """
    return np.stack([image.overlay(img, m, alpha=alpha) for img, m in zip(images, maps)])


def stored_maps(maps: np.ndarray, limit: int = MAX_MAP_SIDE) -> np.ndarray:
    """Display maps `(N, H, W)` resized bilinearly to `map_size(H, W, limit)`, in [0, 1]."""
    maps = np.asarray(maps, np.float32)
    size = map_size(*maps.shape[1:3], limit)
    if maps.shape[1:3] != size:
        maps = image.resize(maps[..., None], size)[..., 0]
    return np.clip(maps, 0, 1)


def _ints(values: Any, i: int) -> int | None:
    return None if values is None else int(values[i])


def attribution_record(
    method: str,
    maps: np.ndarray,
    layer: str | None = None,
    target: str = "predicted",
    class_names: Sequence[str] | None = None,
    labels: Any = None,
    predictions: Any = None,
    classes: Any = None,
    scores: Any = None,
    faithfulness: dict | None = None,
) -> dict:
    """The `json/attribution/<method>` record of docs/log-format.md.

    Example:

    ```python
    record = attribution_record("grad_cam", display_maps(maps, "grad_cam"), layer="conv3")
    ```

    Args:
        method: the method's name.
        maps: `(N, H, W)` display maps in [0, 1] (see `display_maps`); stored at most
            `MAX_MAP_SIDE` on a side, rounded to 3 decimals.
        layer: the path of the layer the maps were read at. Defaults to None.
        target: what was explained (`"predicted"`, `"label"`, `"classes"`, ...).
            Defaults to `"predicted"`.
        class_names: class names for the dashboard. Defaults to None.
        labels: `(N,)` true classes of the probes. Defaults to None.
        predictions: `(N,)` predicted classes. Defaults to None.
        classes: `(N,)` explained classes. Defaults to None.
        scores: `(N,)` the model's score for the explained classes. Defaults to None.
        faithfulness: the maps' `faithfulness_record`, stored under `"faithfulness"`.
            Defaults to None (no such key).

    Returns:
        A JSON-ready dict: `method`, `layer`, `size`, `target`, `class_names`, `probes`
        (`label`, `prediction`, `class`, `score` per probe), `maps` (flat lists) and,
        when given, `faithfulness`.
    """
    small = stored_maps(maps)
    probes = [
        {
            "label": _ints(labels, i),
            "prediction": _ints(predictions, i),
            "class": _ints(classes, i),
            "score": None if scores is None else float(scores[i]),
        }
        for i in range(len(small))
    ]
    record = {
        "method": method,
        "layer": layer,
        "size": [int(small.shape[1]), int(small.shape[2])],
        "target": target,
        "class_names": None if class_names is None else list(class_names),
        "probes": probes,
        "maps": [np.round(m.reshape(-1).astype(np.float64), 3).tolist() for m in small],
    }
    if faithfulness is not None:
        record["faithfulness"] = faithfulness
    return record


def _rounded(values: Any) -> Any:
    """Floats rounded to 4 decimals (NaN and inf become None), in nested lists."""
    arr = np.round(np.asarray(values, np.float64), 4)
    return np.where(np.isfinite(arr), arr, None).tolist()


def _summary(scores: Any) -> dict:
    return {k: _rounded(v) for k, v in scores.summary().items()}


def _setting(value: Any) -> Any:
    """A setting as JSON: names and numbers as they are, arrays (e.g. a baseline) as
    `"array"`."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return "array"


def faithfulness_record(scores: Any, reference: Any = None, settings: dict | None = None) -> dict:
    """The `"faithfulness"` entry of a `json/attribution/<method>` record.

    Example:

    ```python
    result = faithfulness_scores(model, x, {"grad_cam": maps})
    entry = faithfulness_record(result["grad_cam"], result["random"], {"steps": 20})
    ```

    Args:
        scores: the method's `FaithfulnessScores`.
        reference: the random reference's `FaithfulnessScores`. Defaults to None.
        settings: the arguments the scores were computed with. Defaults to None.

    Returns:
        A JSON-ready dict: `scores` and `random` (`deletion_auc`, `insertion_auc`,
        `mu_fidelity`: means over the probes; `random` None without a reference),
        `probes` (the three scores per probe), `curves` (`fractions` and the mean
        `deletion` and `insertion` curves over the probes; `random_deletion` and
        `random_insertion` with a reference) and `settings`. Values have 4 decimals;
        NaN (MuFidelity of a constant map) is None.
    """
    per_probe = zip(scores.deletion.auc, scores.insertion.auc, scores.mu_fidelity.correlation)
    curves = {
        "fractions": _rounded(scores.deletion.fractions),
        "deletion": _rounded(scores.deletion.mean_curve),
        "insertion": _rounded(scores.insertion.mean_curve),
    }
    if reference is not None:
        curves["random_deletion"] = _rounded(reference.deletion.mean_curve)
        curves["random_insertion"] = _rounded(reference.insertion.mean_curve)
    return {
        "scores": _summary(scores),
        "random": None if reference is None else _summary(reference),
        "probes": [
            {"deletion_auc": _rounded(d), "insertion_auc": _rounded(i), "mu_fidelity": _rounded(m)}
            for d, i, m in per_probe
        ],
        "curves": curves,
        "settings": {k: _setting(v) for k, v in (settings or {}).items()},
    }
