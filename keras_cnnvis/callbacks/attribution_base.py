"""The shared base of the attribution callbacks: schedule -> the registered methods on the
probe images (and, when asked, their faithfulness scores) -> `keras_cnnvis.rendering.attribution`
-> the records of docs/log-format.md.
"""

from __future__ import annotations

import hashlib
import warnings
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.attribution.faithfulness import (
    RANDOM,
    faithfulness_scores,
    faithfulness_settings,
)
from keras_cnnvis.attribution.localization import energy_in_mask, pointing_game
from keras_cnnvis.attribution.registry import Method, choose, lookup, names
from keras_cnnvis.attribution.targets import resolve_target
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.model import find_layer, output_activation
from keras_cnnvis.model.compiled import forward_function
from keras_cnnvis.rendering import attribution as render
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.attribution import MAX_MAP_SIDE, display_maps, map_size

__all__ = [
    "AttributionCallback",
    "FAITHFULNESS",
    "MAX_MAP_SIDE",
    "SMOOTH_METHODS",
    "display_maps",
    "map_size",
]

_PROBES_WRITTEN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# writer -> {"step": step, "references": {key: FaithfulnessScores}, "written": bool}: the random
# reference of the current step, shared by the callbacks of one fit (they share the writer).
_REFERENCES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

FAITHFULNESS: dict = {"steps": 10, "baseline": "blur", "nb_samples": 50, "draws": 1}
"""What `faithfulness=True` computes, over the defaults of `faithfulness_scores`: curves of
10 steps (areas within 0.01 of 20 steps on the trained demo CNN), a blurred baseline for all
three scores, MuFidelity on 50 subsets of a 9x9 grid (20% of the cells), one per-pixel noise
draw for the random reference (its curves barely move between draws). With M methods and N
probes that is N * (20 * (M + 1) + 51) forward passes per logged step: 111 per probe for
Grad-CAM and LayerCAM."""


SCHEDULE = ("every_n_epochs", "log_initial")
"""The keys of a `faithfulness` dict that say when to score, not how."""


def faithfulness_options(value: Any, name: str) -> dict | None:
    """The `faithfulness=` argument of the attribution callbacks as settings, or None (off).

    Besides the settings of `faithfulness_scores`, the dict may hold `"every_n_epochs"`:
    the scores then run only on records whose step is a multiple of it, and on the
    record after the last epoch (the maps are logged on every record); and
    `"log_initial"`: False leaves the record before training unscored (the scores of an
    untrained model are noise; `CNNVisCallback` does so, as for its expensive monitors).

    Raises:
        ValueError: for a value that is not a bool or a dict, or an unknown setting.
    """
    if value is None or value is False:
        return None
    if value is True:
        return dict(FAITHFULNESS)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{name}: faithfulness must be True, False or a dict of faithfulness_scores "
            f"settings (e.g. {{'steps': 20}}); got {type(value).__name__}."
        )
    value = dict(value)
    every = value.pop("every_n_epochs", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(
            f"{name}: faithfulness every_n_epochs must be an integer >= 1; got {every!r}."
        )
    initial = value.pop("log_initial", True)
    if not isinstance(initial, bool):
        raise ValueError(
            f"{name}: faithfulness log_initial must be True or False; got {initial!r}."
        )
    try:
        faithfulness_settings(None, **value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    schedule = {"every_n_epochs": every} if every > 1 else {}
    return {**FAITHFULNESS, **value, **schedule, **({} if initial else {"log_initial": False})}


def _mean_defined(values: np.ndarray) -> float:
    """The mean of the finite values; NaN, without numpy's empty-slice warning, when none is
    (e.g. the localization scores of maps that are zero everywhere)."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _digest(value: Any) -> Any:
    """A hashable stand-in for a setting or target (arrays by their bytes)."""
    if isinstance(value, np.ndarray):
        return (value.shape, str(value.dtype), hashlib.sha1(value.tobytes()).hexdigest())
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_digest(v) for v in value)
    return id(value)


def __getattr__(name: str):
    if name == "SMOOTH_METHODS":  # derived from the registry, so it includes new methods
        return names(display="smooth")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def method_names(methods: str | Sequence[str], allowed: Sequence[str], owner: str) -> list[str]:
    """`methods` as a list of names, each one of `allowed` (the 0.1 name of
    `attribution.registry.choose`)."""
    return choose(methods, None, owner, allowed=allowed)


class AttributionCallback(MonitorCallback):
    """Logs attribution maps of fixed probe images every few epochs (base class).

    A subclass names its registry `family` and calls `offer(methods, **settings)` in its
    constructor; `setup()` looks the methods up in `keras_cnnvis.attribution.registry` and
    checks them against the model. For each method and logged step this writes the
    overlays `attribution/<method>` (one image per probe), the raw maps
    `json/attribution/<method>` (at most 64x64, scaled to [0, 1]) and, when masks are
    given, the scalars `localization/<method>/energy_in_mask` and
    `localization/<method>/pointing_game`; the probes themselves go to `probes/images`
    once per step. With `faithfulness`, each method's deletion and insertion areas and
    MuFidelity (`keras_cnnvis.attribution.faithfulness_scores` on the probes, for the
    explained target) go to the scalars `faithfulness/<method>/deletion_auc`,
    `/insertion_auc` and `/mu_fidelity` and to the record's `faithfulness` entry; the
    random-map reference to `faithfulness/random/...` once per step (callbacks of one fit
    with the same probes, target and settings compute it once).

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
        faithfulness: False (off), True (the settings in `FAITHFULNESS`) or a dict of
            `faithfulness_scores` settings over those. Defaults to False.
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
        faithfulness: bool | dict = False,
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        self.faithfulness = faithfulness_options(faithfulness, type(self).__name__)
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
        self._faithfulness_failed = False
        self._faith_settings: dict | None = None

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
        self._faithfulness_failed = False
        self._faith_settings = None
        if self.faithfulness is not None:
            try:
                settings = {k: v for k, v in self.faithfulness.items() if k not in SCHEDULE}
                self._faith_settings = faithfulness_settings(probe, **settings)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        self._probe = probe
        self._predict = forward_function(self.model)  # one trace for every monitor
        self._activation = output_activation(self.model).name

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
    def log(self, step: int, logs: dict | None = None):
        probe = self._probe
        shown = image.display_images(probe)
        scale = image.auto_scale(max(probe.shape[1:3]), target=128, max_scale=4)
        self._write_probes(shown, scale, step)
        probes = self._probe_classes(probe)
        # The explained classes come from that one pass over the probes, so no method and
        # no score runs the probes again to find the predicted class.
        explained = self._target if probes["classes"] is None else probes["classes"]
        maps = {
            method.name: method.fn(self.model, probe, target=explained, **kwargs)
            for method, kwargs in self.methods
        }
        faithfulness = self._faithfulness_or_warn(maps, explained, step)
        layers = {
            method.name: (
                None if kw.get("layer") is None else find_layer(self.model, kw["layer"]).path
            )
            for method, kw in self.methods
        }
        # Overlays, records and localisation scores need no model: the background worker.
        return lambda: self._record(step, maps, shown, scale, probes, faithfulness, layers)

    def _record(self, step, maps, shown, scale, probes, faithfulness, layers) -> None:
        writer, target = self.writer, self._target_name()
        for method, _ in self.methods:
            name = method.name
            shown_maps = render.display_maps(maps[name], method.display)
            overlays = render.overlays(shown, shown_maps, self.alpha)
            writer.images(f"attribution/{name}", image.upscale(overlays, scale), step)
            record = render.attribution_record(
                name,
                shown_maps,
                layer=layers[name],
                target=target,
                class_names=self.class_names,
                faithfulness=faithfulness.get(name),
                **probes,
            )
            writer.json(f"json/attribution/{name}", record, step, kind="attribution")
            if self.masks is not None:
                energy = _mean_defined(energy_in_mask(maps[name], self.masks))
                hits = _mean_defined(pointing_game(maps[name], self.masks))
                writer.scalar(f"localization/{name}/energy_in_mask", energy, step)
                writer.scalar(f"localization/{name}/pointing_game", hits, step)

    def _faithfulness_or_warn(self, maps: dict, target: Any, step: int) -> dict:
        """`_faithfulness`, except that with `on_error="warn"` a failure turns the scores
        off for the rest of the fit (one warning) and the maps are still logged."""
        if self.faithfulness is None or self._faithfulness_failed:
            return {}
        every = self.faithfulness.get("every_n_epochs", 1)
        if step % every and step != (self.params or {}).get("epochs"):
            return {}  # a record between the scored ones: maps only
        if self._last_completed is None and not self.faithfulness.get("log_initial", True):
            return {}  # the record before training (no epoch has completed yet)
        try:
            return self._faithfulness(maps, target, step)
        except Exception as error:
            if self.on_error == "raise":
                raise
            self._faithfulness_failed = True
            warnings.warn(
                f"{type(self).__name__}: the faithfulness scores failed at step {step} "
                f"({type(error).__name__}: {error}); the maps are still logged, the scores "
                "are off for the rest of this fit.",
                RuntimeWarning,
                stacklevel=2,
            )
            return {}

    def _faithfulness(self, maps: dict, target: Any, step: int) -> dict:
        """Scores `maps` for `target` and, unless a callback of this fit already did at this
        step for the same probes, target and settings, the random reference; writes the
        scalars (the reference's once per step) and returns each method's record entry."""
        settings, writer = self._faith_settings, self.writer
        run = self.run_writer
        shared = _REFERENCES.get(run)
        if shared is None or shared["step"] != step:
            shared = _REFERENCES[run] = {"step": step, "references": {}, "written": False}
        key = (_digest(self._probe), _digest(target), _digest(sorted(settings.items())))
        reference = shared["references"].get(key)
        draws = 0 if reference is not None else settings["draws"]
        scores = faithfulness_scores(
            self.model, self._probe, maps, target=target, **{**settings, "draws": draws}
        )
        if RANDOM in scores:
            reference = shared["references"][key] = scores.pop(RANDOM)
        for name, result in scores.items():
            for score, value in result.summary().items():
                writer.scalar(f"faithfulness/{name}/{score}", value, step)
        if reference is not None and not shared["written"]:
            shared["written"] = True
            for score, value in reference.summary().items():
                writer.scalar(f"faithfulness/{RANDOM}/{score}", value, step)
        return {
            name: render.faithfulness_record(result, reference, settings)
            for name, result in scores.items()
        }

    def _write_probes(self, shown: np.ndarray, scale: int, step: int) -> None:
        writer = self.writer
        key = (int(step), hash(shown.tobytes()))
        written = _PROBES_WRITTEN.setdefault(self.run_writer, set())
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
