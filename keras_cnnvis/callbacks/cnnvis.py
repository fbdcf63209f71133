"""CNNVisCallback: every keras-cnnvis monitor in one line, with sensible schedules, automatic
layer and probe choice, and the rule that no monitor can stop training.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.callbacks.base import MonitorCallback, is_chief
from keras_cnnvis.callbacks.budget import TimeBudget, estimate_cost, guess_cost
from keras_cnnvis.callbacks.monitors import REGISTRY, MonitorData, monitor_names
from keras_cnnvis.model import conv_layers

# Names kept for compatibility; the registry (callbacks/monitors.py) is the one definition.
CHEAP = monitor_names(cheap=True)
EXPENSIVE = monitor_names(cheap=False)
MONITORS = CHEAP + EXPENSIVE
CLASSES = {name: str(monitor.callback) for name, monitor in REGISTRY.items()}
NEEDS_DATA = tuple(name for name, monitor in REGISTRY.items() if monitor.needs)


def auto_layers(model: keras.Model, n: int = 4) -> list[str]:
    """Up to `n` convolution layers spread evenly from the first to the last (paths)."""
    convs = [info.path for info in conv_layers(model)]
    if len(convs) <= n:
        return convs
    picks = np.unique(np.round(np.linspace(0, len(convs) - 1, n)).astype(int))
    return [convs[i] for i in picks]


def pick_probes(labels: np.ndarray | None, n_examples: int, n: int) -> np.ndarray:
    """Indices of `n` probe examples: round-robin over classes when labels are known."""
    if labels is None:
        return np.arange(min(n, n_examples))
    return inputs.balanced_indices(labels, n)


def _check_options(options: dict) -> None:
    """Raises for per-monitor options that are not arguments of that monitor's callback."""
    import inspect

    for name, kwargs in options.items():
        cls = REGISTRY[name].callback_class
        if not isinstance(kwargs, dict):
            raise ValueError(
                f"options['{name}'] must be a dict of {cls.__name__} arguments; got "
                f"{type(kwargs).__name__}."
            )
        takes = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(kwargs) - set(takes))
        if unknown:
            raise ValueError(
                f"options['{name}'] has {unknown}, which {cls.__name__} does not take; its "
                f"arguments are {takes}."
            )


def _check_masks(masks: Any, probe: Any, x_val: Any, limit: int) -> np.ndarray | None:
    """Masks as an array with one mask per probe image (if given) or validation image."""
    if masks is None:
        return None
    masks = np.asarray(masks)
    if probe is not None:
        n, what = len(probe), "probe image"
    elif x_val is not None:
        masks, n, what = masks[:limit], len(x_val), "validation image"
    else:
        raise ValueError(
            "masks were given without probe images or validation_data to go with them; "
            "pass one of them, or leave masks None."
        )
    if len(masks) != n:
        raise ValueError(f"masks must hold one mask per {what} ({n}); got {len(masks)}.")
    return masks


class CNNVisCallback(keras.callbacks.Callback):
    """Every keras-cnnvis monitor in one callback, with schedules that keep training fast.

    Cheap monitors (filter grids, filter health, activation maps, Grad-CAM, confusion
    matrix) run every epoch; expensive ones (saliency/guided backprop/integrated
    gradients, occlusion, max-activating patches, PCA/t-SNE embeddings, nearest
    neighbours, class visualisations) every `expensive_every` epochs and once more at the
    end of training. Layers and probe images are chosen automatically when not given:
    up to four convolution layers spread from first to last, and `n_probes` validation
    images, one per class in turn. Monitors that need data are off without
    `validation_data` (or `probe`). Each monitor fails on its own: with
    `on_error="warn"` a failing monitor warns once and steps aside.

    A time budget keeps the callback cheap on any model: its own time (setup and every
    record) stays within `budget` (default 10%) of the training time so far. A due record
    runs only if its expected cost (the median of its earlier records) fits; cheap
    monitors go first. A monitor that never ran takes the first chance the budget has any
    slack (its overshoot is paid back by skipping later records); the final records at
    the end of training run only if their expected cost fits the whole fit. Before the
    first epoch only the cheap monitors record the initial state. When epochs are long
    next to the monitors' costs nothing is skipped; on short ones (a few seconds per
    epoch) records are thinned, one warning at the end of `fit` says which, and the
    scalar `cnnvis/overhead` logs the share used. `budget=None` runs every monitor on
    its schedule whatever it costs.

    Example:

    ```python
    model.fit(
        x_train, y_train, epochs=20, validation_data=(x_val, y_val),
        callbacks=[CNNVisCallback("runs/exp1", validation_data=(x_val, y_val))],
    )
    ```

    Args:
        log_dir: the TensorBoard log directory (records go to `<log_dir>/<run_name>`).
        validation_data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` batches
            (at most `max_examples` are used). Defaults to None.
        probe: probe images `(N, H, W, C)` for maps and overlays. Defaults to None
            (chosen from `validation_data`).
        probe_labels: classes of `probe` when it is given. Defaults to None.
        masks: object masks `(N, H, W)` for localisation scores: one per `probe` image
            when `probe` is given, else aligned with `validation_data`. Defaults to None.
        class_names: class names. Defaults to None.
        layers: convolution layers to watch. Defaults to None (automatic).
        n_probes: probe images chosen from the validation data. Defaults to 8.
        max_examples: validation examples used by data-hungry monitors. Defaults to 1000.
        expensive_every: epochs between runs of the expensive monitors. Defaults to 5.
        include: monitor names to run (see `MONITORS`). Defaults to None (all).
        exclude: monitor names to leave out. Defaults to ().
        options: per-monitor constructor arguments, e.g.
            `{"embedding": {"methods": ("pca",)}, "filters": {"every_n_epochs": 2}}`.
            Defaults to None.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.
        budget: the largest share of training time the callback may take (0.1 =
            10%), or None for no limit. Defaults to 0.1.

    Raises:
        ValueError: for unknown monitor names, a budget that is not positive, options a
            monitor does not take, masks that do not match the images, or malformed data
            (at construction), and for misconfiguration against the model (several
            outputs, unknown layers, probes that do not fit, ...) at the start of `fit`.
    """

    def __init__(
        self,
        log_dir: str,
        validation_data: Any = None,
        probe: np.ndarray | None = None,
        probe_labels: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        layers: Sequence[Any] | None = None,
        n_probes: int = 8,
        max_examples: int = 1000,
        expensive_every: int = 5,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        options: dict | None = None,
        run_name: str = "cnnvis",
        on_error: str = "warn",
        budget: float | None = 0.1,
    ):
        super().__init__()
        self.budget = TimeBudget(budget)
        known = list(REGISTRY)
        names = set(include if include is not None else known) - set(exclude)
        unknown = sorted((set(include or ()) | set(exclude) | set(options or {})) - set(known))
        if unknown:
            raise ValueError(f"Unknown monitors {unknown}; choose from {known}.")
        if not isinstance(expensive_every, int) or expensive_every < 1:
            raise ValueError(f"expensive_every must be an integer >= 1; got {expensive_every!r}.")
        self.log_dir = log_dir
        self.run_name = run_name
        self.on_error = on_error
        self.class_names = list(class_names) if class_names is not None else None
        self.layers = layers
        self.expensive_every = expensive_every
        self.options = dict(options or {})
        _check_options(self.options)
        self.x_val = self.y_val = None
        if validation_data is not None:
            self.x_val, y = inputs.labelled_arrays(validation_data, max_examples)
            self.y_val = None if y is None else inputs.class_labels(y, len(self.x_val))
            if len(self.x_val) == 0:
                raise ValueError("validation_data holds no examples; pass some or leave it None.")
        probe = None if probe is None else inputs.as_image_array(probe, "probe images")
        self.masks_val = _check_masks(masks, probe, self.x_val, max_examples)
        if probe is not None:
            self.probe = probe
            self.probe_labels = (
                None if probe_labels is None else inputs.class_labels(probe_labels, len(probe))
            )
            self.probe_masks = self.masks_val  # masks describe the given probes
        elif self.x_val is not None:
            idx = pick_probes(self.y_val, len(self.x_val), n_probes)
            self.probe = self.x_val[idx]
            self.probe_labels = None if self.y_val is None else self.y_val[idx]
            self.probe_masks = None if self.masks_val is None else self.masks_val[idx]
        else:
            self.probe = self.probe_labels = self.probe_masks = None
        if self.probe is not None and len(self.probe) == 0:
            raise ValueError("The probe set is empty; pass at least one probe image.")
        data = self._data(layers=[])
        self.names = [n for n, m in REGISTRY.items() if n in names and m.available(data)]
        self.monitors: list[MonitorCallback] = []
        self.skipped: dict[str, int] = {}  # records the budget skipped in the last fit
        self._mark: float | None = None  # when the callback's own work last finished
        self._writer = None

    # -- building the monitors ----------------------------------------------------------
    def _data(self, layers: list) -> MonitorData:
        return MonitorData(
            layers=layers,
            probe=self.probe,
            probe_labels=self.probe_labels,
            probe_masks=self.probe_masks,
            class_names=self.class_names,
            x_val=self.x_val,
            y_val=self.y_val,
        )

    def _build(self) -> list[MonitorCallback]:
        layers = list(self.layers) if self.layers is not None else auto_layers(self.model)
        data = self._data(layers)
        monitors = []
        for name in self.names:
            monitor = REGISTRY[name]
            kwargs = {
                **monitor.arguments(data),
                "log_dir": self.log_dir,
                "every_n_epochs": 1 if monitor.cheap else self.expensive_every,
                "run_name": self.run_name,
                "on_error": self.on_error,
                **self.options.get(name, {}),
            }
            callback = monitor.callback_class(**kwargs)
            # Expensive monitors always end with a record of the trained model; cheap
            # ones too when the budget skipped their last epoch.
            callback.log_at_end = not monitor.cheap or self.budget.share is not None
            callback.gate = self._gate
            monitors.append(callback)
        return monitors

    # -- the time budget ----------------------------------------------------------------
    def _gate(self, monitor: MonitorCallback, phase: str) -> bool:
        """Whether `monitor`'s due record fits in the budget (see the class docstring)."""
        if self.budget.share is None:
            return True
        name = self.names[self.monitors.index(monitor)]
        if phase == "initial":
            # Nothing has trained yet to pay for it: only the cheap monitors record the
            # initial state (the baseline every later record is compared with).
            return REGISTRY[name].cheap
        cost = estimate_cost(monitor.log_seconds)
        if cost is None:
            # Never ran, cost unknown. During training it runs as soon as the budget has
            # any slack (an overshoot is paid back by skipping later records); at the end,
            # when nothing can be paid back, only if a cautious guess fits.
            cost = 0.0 if phase == "epoch" else guess_cost(m.log_seconds for m in self.monitors)
        if self.budget.allows(cost):
            return True
        self.skipped[name] = self.skipped.get(name, 0) + 1
        return False

    def _run(self, hook: str, *args) -> None:
        """Calls `hook` on every monitor, charging the time to the budget."""
        for monitor in self.monitors:
            start = time.perf_counter()
            getattr(monitor, hook)(*args)
            self.budget.charge(time.perf_counter() - start)

    def _report_budget(self, step: int | None) -> None:
        """Logs the share of training time used; at the end, warns about skipped records."""
        used = self.budget.used
        if self._writer is not None and step is not None and np.isfinite(used):
            try:
                self._writer.scalar("cnnvis/overhead", used, step)
            except Exception:  # reporting must not stop training
                pass
        if step is None and self.skipped:
            counts = ", ".join(f"{name} {n}" for name, n in self.skipped.items())
            warnings.warn(
                f"CNNVisCallback skipped {sum(self.skipped.values())} records ({counts}) "
                f"to keep its own time within budget={self.budget.share:g} of training "
                f"time (used {used:.2f}). Pass budget=None to run every monitor on its "
                "schedule, or a larger budget.",
                UserWarning,
                stacklevel=2,
            )

    # -- forwarding ---------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        for monitor in self.monitors:
            monitor.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for monitor in self.monitors:
            monitor.set_params(params)

    def _check_model(self) -> None:
        """Refuses several outputs; warns about 0-255 images for a model without rescaling."""
        from keras_cnnvis.model import iter_layers

        model = self.model
        try:
            outputs = list(model.outputs or ())
        except (AttributeError, ValueError):
            outputs = []
        if len(outputs) > 1 and set(self.names) - {"filters"}:
            raise ValueError(
                f"CNNVisCallback: model '{model.name}' has {len(outputs)} outputs; its "
                "monitors explain one output of class scores. Attach it to a model with a "
                "single output, keep only the weight monitors (include=('filters',)), or "
                "use single callbacks with a callable target that picks the output, e.g. "
                "GradCAMCallback(log_dir, probe, target=lambda outputs: outputs[0])."
            )
        images = self.x_val if self.x_val is not None else self.probe
        if images is None or images.size == 0:
            return
        lo, hi = float(np.min(images)), float(np.max(images))
        rescales = (keras.layers.Rescaling, keras.layers.Normalization)
        if (
            lo >= 0.0
            and hi > 2.0
            and not any(isinstance(i.layer, rescales) for i in iter_layers(model))
        ):
            warnings.warn(
                f"CNNVisCallback: the images range over [{lo:g}, {hi:g}] (0-255 pixels?) "
                f"but model '{model.name}' has no Rescaling or Normalization layer. If it "
                "was trained on inputs in [0, 1], pass the images divided by 255: every "
                "visualisation shows the model's response to exactly these inputs.",
                UserWarning,
                stacklevel=3,
            )

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        self.budget.reset()
        self.skipped = {}
        if not self.monitors:
            self._check_model()
            self.monitors = self._build()
            for monitor in self.monitors:
                monitor.set_model(self.model)
                monitor.set_params(self.params)
        for monitor in self.monitors:
            monitor.on_train_begin(logs)
        if self.budget.share is not None and self.monitors and is_chief(self.model):
            from keras_cnnvis import summary

            self._writer = summary.acquire(self.monitors[0].run_dir)
        self._mark = time.perf_counter()
        self.budget.charge(self._mark - start)

    def on_epoch_begin(self, epoch, logs=None):
        self._run("on_epoch_begin", epoch, logs)
        self._mark = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # Training time: everything since the callback's own work last finished (also in
        # custom loops that never call on_epoch_begin).
        if self._mark is not None:
            self.budget.train(time.perf_counter() - self._mark)
        self._run("on_epoch_end", epoch, logs)
        self._report_budget(epoch + 1)
        self._mark = time.perf_counter()

    def on_train_end(self, logs=None):
        try:
            self._run("on_train_end", logs)
            self._report_budget(None)
        finally:
            if self._writer is not None:
                from keras_cnnvis import summary

                summary.release(self._writer)
                self._writer = None
