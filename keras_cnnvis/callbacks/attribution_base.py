"""The shared base of the attribution callbacks: schedule -> the registered methods on the
probe images -> `keras_cnnvis.render.attribution` -> the records of docs/log-format.md.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.attribution.localization import energy_in_mask, pointing_game
from keras_cnnvis.attribution.registry import Method, choose, lookup, names
from keras_cnnvis.attribution.targets import resolve_target
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.model import find_layer, instance_function, output_activation
from keras_cnnvis.render import attribution as render
from keras_cnnvis.render import image
from keras_cnnvis.render.attribution import MAX_MAP_SIDE, display_maps, map_size

__all__ = [
    "AttributionCallback",
    "MAX_MAP_SIDE",
    "SMOOTH_METHODS",
    "display_maps",
    "map_size",
]

_PROBES_WRITTEN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def __getattr__(name: str):
    if name == "SMOOTH_METHODS":  # derived from the registry, so it includes new methods
        return names(display="smooth")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AttributionCallback(MonitorCallback):
    """Logs attribution maps of fixed probe images every few epochs (base class).

    A subclass names its registry `family` and calls `offer(methods, **settings)` in its
    constructor; `setup()` looks the methods up in `keras_cnnvis.attribution.registry` and
    checks them against the model. For each method and logged step this writes the
    overlays `attribution/<method>` (one image per probe), the raw maps
    `json/attribution/<method>` (at most 64x64, scaled to [0, 1]) and, when masks are
    given, the scalars `localization/<method>/energy_in_mask` and
    `localization/<method>/pointing_game`; the probes themselves go to `probes/images`
    once per step.

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

    family = ""
    """The registry family whose methods this callback offers (`registry.FAMILIES`)."""

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
        self.method_names: list[str] = []
        self.settings: dict = {}
        self.methods: list[tuple[Method, dict]] = []
        self._probe: np.ndarray | None = None
        self._target: Any = None

    def offer(self, methods: str | Sequence[str], **settings: Any) -> None:
        """Chooses the methods to log and the settings passed to those that take them.

        Raises:
            ValueError: for no method, or one that is not a registered method of `family`.
        """
        self.method_names = choose(methods, self.family, type(self).__name__)
        self.settings = settings

    # -- validation ---------------------------------------------------------------------
    def setup(self) -> None:
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
        self.methods = []
        for method in map(lookup, self.method_names):
            kwargs = method.kwargs(self.settings)
            method.check(self.model, probe, **kwargs)  # messages name the method
            self.methods.append((method, kwargs))
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
        probe, writer = self._probe, self.writer
        shown = image.display_images(probe)
        scale = image.auto_scale(max(probe.shape[1:3]), target=128, max_scale=4)
        self._write_probes(shown, scale, step)
        probes = self._probe_classes(probe)
        target = self._target_name()
        for method, kwargs in self.methods:
            maps = method.fn(self.model, probe, target=self._target, **kwargs)
            shown_maps = render.display_maps(maps, method.display)
            overlays = render.overlays(shown, shown_maps, self.alpha)
            writer.images(f"attribution/{method.name}", image.upscale(overlays, scale), step)
            layer = kwargs.get("layer")
            record = render.attribution_record(
                method.name,
                shown_maps,
                layer=None if layer is None else find_layer(self.model, layer).path,
                target=target,
                class_names=self.class_names,
                **probes,
            )
            writer.json(f"json/attribution/{method.name}", record, step, kind="attribution")
            if self.masks is not None:
                energy = float(np.nanmean(energy_in_mask(maps, self.masks)))
                hits = float(np.nanmean(pointing_game(maps, self.masks)))
                writer.scalar(f"localization/{method.name}/energy_in_mask", energy, step)
                writer.scalar(f"localization/{method.name}/pointing_game", hits, step)

    def _write_probes(self, shown: np.ndarray, scale: int, step: int) -> None:
        writer = self.writer
        key = (int(step), hash(shown.tobytes()))
        written = _PROBES_WRITTEN.setdefault(writer, set())
        if key in written:
            return
        written.add(key)
        writer.images("probes/images", image.upscale(shown, scale), step)

    def _probe_classes(self, probe: np.ndarray) -> dict:
        """The probes' labels, predicted and explained classes, and explained scores."""
        outputs, predictions = self._predict(probe), None
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        if isinstance(outputs, (list, tuple, dict)):
            outputs = None
        else:
            outputs = np.asarray(outputs, np.float32)
            if outputs.ndim == 2:
                predictions = inputs.predicted_classes(outputs, self._activation)
            else:
                outputs = None
        classes = self._explained_classes(predictions)
        scores = None
        if classes is not None and outputs is not None:
            scores = inputs.class_scores(outputs, classes, self._activation)
        return {
            "labels": self.labels,
            "predictions": predictions,
            "classes": classes,
            "scores": scores,
        }

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
