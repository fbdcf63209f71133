"""The shared base of the attribution callbacks: probe validation, rendering of overlays, and
the records of docs/log-format.md (probe images, overlays, raw maps, localisation scalars).
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import numpy as np

from keras_cnnvis import image, inputs
from keras_cnnvis.attribution._common import upsample as resize_maps
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.model import instance_function, output_activation

MAX_MAP_SIDE = 64
# Methods whose maps are smooth (shown scaled by their maximum); gradient maps are spiky
# and are scaled by their 99th percentile instead, as is usual for saliency displays.
SMOOTH_METHODS = ("grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "cam", "occlusion")

_PROBES_WRITTEN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def display_maps(maps: np.ndarray, method: str) -> np.ndarray:
    """Scales `(N, H, W)` maps to [0, 1] by magnitude for display, one scale per map."""
    mags = np.abs(np.asarray(maps, np.float32))
    q = 100.0 if method in SMOOTH_METHODS else 99.0
    top = np.percentile(mags.reshape(len(mags), -1), q, axis=1).reshape(-1, 1, 1)
    return np.clip(np.where(top > 0, mags / np.where(top > 0, top, 1), 0), 0, 1).astype(np.float32)


def map_size(height: int, width: int, limit: int = MAX_MAP_SIDE) -> tuple[int, int]:
    """The stored size of a map: the probe size, shrunk to fit `limit` x `limit`."""
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def method_names(methods: str | Sequence[str], allowed: Sequence[str], owner: str) -> list[str]:
    """`methods` as a list of names, each one of `allowed`; ValueError otherwise."""
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names or any(m not in allowed for m in names):
        raise ValueError(f"{owner} methods must be some of {tuple(allowed)}; got {methods!r}.")
    return names


class AttributionCallback(MonitorCallback):
    """Logs attribution maps of fixed probe images every few epochs (base class).

    Subclasses set `self.methods` to `[(name, function, kwargs), ...]` and may extend
    `setup()`. For each method and logged step this writes the overlays
    `attribution/<method>` (one image per probe), the raw maps `json/attribution/<method>`
    (at most 64x64, scaled to [0, 1]) and, when masks are given, the scalars
    `localization/<method>/energy_in_mask` and `localization/<method>/pointing_game`;
    the probes themselves go to `probes/images` once per step.

    Args:
        log_dir: the TensorBoard log directory.
        probe: float `(N, H, W, C)` probe images, in the model's input format.
        labels: `(N,)` true classes of the probes. Defaults to None.
        masks: `(N, H, W)` object masks for localisation scores. Defaults to None.
        class_names: names of the classes, for the dashboard. Defaults to None.
        target: what to explain: None (the labels if given, else the predicted class),
            `"predicted"`, `"label"`, or any target of `attribution.resolve_target`.
            Defaults to None.
        alpha: heatmap weight in the overlays. Defaults to 0.5.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.
    """

    def __init__(
        self,
        log_dir: str,
        probe: Any,
        labels: Any = None,
        masks: Any = None,
        class_names: Sequence[str] | None = None,
        target: Any = None,
        alpha: float = 0.5,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        self.probe = probe
        self.labels = None if labels is None else np.asarray(labels)
        self.masks = None if masks is None else np.asarray(masks)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.target = target
        self.alpha = float(alpha)
        self.methods: list[tuple[str, Any, dict]] = []
        self._probe: np.ndarray | None = None
        self._target: Any = None

    # -- validation ---------------------------------------------------------------------
    def setup(self) -> None:
        from keras_cnnvis.attribution.targets import resolve_target

        name = type(self).__name__
        try:
            probe = inputs.check_images(self.probe, self.model, "probe images")
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        n, height, width = probe.shape[:3]
        if self.labels is not None and self.labels.shape[:1] != (n,):
            raise ValueError(
                f"{name}: labels must hold one class per probe image ({n}); got shape "
                f"{self.labels.shape}."
            )
        if self.masks is not None:
            masks = self.masks[..., 0] if self.masks.ndim == 4 else self.masks
            if masks.shape != (n, height, width):
                raise ValueError(
                    f"{name}: masks must have shape (N, H, W) = {(n, height, width)} like "
                    f"the probe images; got {self.masks.shape}."
                )
            self.masks = masks
        self._target = self._resolve_target_choice()
        resolve_target(self.model, self._target, n)  # raises for bad classes or units
        self._probe = probe
        self._predict = instance_function(self._call_model)  # compiled once per fit
        self._activation = output_activation(self.model).name

    def _call_model(self, x):
        return self.model(x, training=False)

    def _resolve_target_choice(self) -> Any:
        target = self.target
        if target is None:
            target = "label" if self.labels is not None else "predicted"
        if isinstance(target, str) and target == "label":
            if self.labels is None:
                raise ValueError(
                    f"{type(self).__name__}: target='label' needs labels=...; pass the "
                    "probes' true classes or use target='predicted'."
                )
            return self.labels
        return target

    # -- logging ------------------------------------------------------------------------
    def log(self, step: int, logs: dict | None = None) -> None:
        probe = self._probe
        shown = image.display_images(probe)
        scale = image.auto_scale(max(probe.shape[1:3]), target=128, max_scale=4)
        self._write_probes(shown, scale, step)
        predictions, probabilities = self._predictions(probe)
        for method, fn, kwargs in self.methods:
            maps = fn(self.model, probe, target=self._target, **kwargs)
            self._write(method, maps, kwargs, shown, scale, predictions, probabilities, step)

    def _write_probes(self, shown: np.ndarray, scale: int, step: int) -> None:
        writer = self.writer
        key = (int(step), hash(shown.tobytes()))
        written = _PROBES_WRITTEN.setdefault(writer, set())
        if key in written:
            return
        written.add(key)
        writer.images("probes/images", image.upscale(shown, scale), step)

    def _predictions(self, probe: np.ndarray):
        out = self._predict(probe)
        if isinstance(out, (list, tuple)) and len(out) == 1:
            out = out[0]
        if isinstance(out, (list, tuple, dict)):
            return None, None
        out = np.asarray(out, np.float32)
        if out.ndim != 2:
            return None, None
        return inputs.predicted_classes(out, self._activation), out

    def _explained_classes(self, predictions) -> np.ndarray | None:
        target = self._target
        n = len(self._probe)
        if target is None or (isinstance(target, str) and target == "predicted"):
            return predictions
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            return np.full(n, int(target))
        if isinstance(target, np.ndarray) and target.ndim == 1:
            return target.astype(np.int64)
        return None

    def _write(self, method, maps, kwargs, shown, scale, predictions, probabilities, step):
        writer = self.writer
        norm = display_maps(maps, method)
        overlays = np.stack(
            [image.overlay(img, m, alpha=self.alpha) for img, m in zip(shown, norm)]
        )
        writer.images(f"attribution/{method}", image.upscale(overlays, scale), step)
        size = map_size(*norm.shape[1:3])
        small = np.clip(resize_maps(norm, size), 0, 1)
        classes = self._explained_classes(predictions)
        scores = None
        if classes is not None and probabilities is not None:
            scores = inputs.class_scores(probabilities, classes, self._activation)
        probes = []
        for i in range(len(norm)):
            cls = None if classes is None else int(classes[i])
            probes.append(
                {
                    "label": None if self.labels is None else int(self.labels[i]),
                    "prediction": None if predictions is None else int(predictions[i]),
                    "class": cls,
                    "score": None if scores is None else float(scores[i]),
                }
            )
        layer = kwargs.get("layer")
        payload = {
            "method": method,
            "layer": self._layer_path(layer),
            "size": [int(size[0]), int(size[1])],
            "target": self._target_name(),
            "class_names": self.class_names,
            "probes": probes,
            "maps": [np.round(m.reshape(-1).astype(np.float64), 3).tolist() for m in small],
        }
        writer.json(f"json/attribution/{method}", payload, step, kind="attribution")
        if self.masks is not None:
            from keras_cnnvis.attribution.localization import energy_in_mask, pointing_game

            energy = float(np.nanmean(energy_in_mask(maps, self.masks)))
            hits = float(np.nanmean(pointing_game(maps, self.masks)))
            writer.scalar(f"localization/{method}/energy_in_mask", energy, step)
            writer.scalar(f"localization/{method}/pointing_game", hits, step)

    def _layer_path(self, layer) -> str | None:
        if layer is None:
            return None
        from keras_cnnvis.model import find_layer

        return find_layer(self.model, layer).path

    def _target_name(self) -> str:
        target = self.target
        if target is None:
            return "label" if self.labels is not None else "predicted"
        if isinstance(target, str):
            return target
        if isinstance(target, tuple):
            return "unit " + ",".join(str(getattr(t, "name", t)) for t in target)
        if callable(target):
            return "callable"
        return "classes"
