"""CNNVisCallback: every keras-cnnvis monitor in one line, with sensible schedules, automatic
layer and probe choice, and the rule that no monitor can stop training.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.callbacks import plan
from keras_cnnvis.callbacks.assembly import MonitorAssembly
from keras_cnnvis.callbacks.batch_clock import BatchClock
from keras_cnnvis.callbacks.base import MonitorCallback, is_chief
from keras_cnnvis.callbacks.budget import TimeBudget
from keras_cnnvis.callbacks.finite import FiniteWeights
from keras_cnnvis.callbacks.gate import BudgetGate
from keras_cnnvis.callbacks.monitors import REGISTRY, monitor_names
from keras_cnnvis.callbacks.plan import auto_layers, pick_probes  # noqa: F401 (public)
from keras_cnnvis.callbacks.shared import SharedPass
from keras_cnnvis.callbacks.twin import TwinRunner
from keras_cnnvis.model.head import output_view

# Names kept for compatibility; the registry (callbacks/monitors.py) is the one definition.
CHEAP = monitor_names(cheap=True)
EXPENSIVE = monitor_names(cheap=False)
MONITORS = CHEAP + EXPENSIVE
CLASSES = {name: str(monitor.callback) for name, monitor in REGISTRY.items()}
NEEDS_DATA = tuple(name for name, monitor in REGISTRY.items() if monitor.needs)


class CNNVisCallback(BudgetGate, MonitorAssembly, keras.callbacks.Callback):
    """Every keras-cnnvis monitor in one callback, with schedules that keep training fast.

    Cheap monitors (filter grids, filter health, activation maps, Grad-CAM, confusion
    matrix, the network view) run every epoch; expensive ones (saliency/guided
    backprop/integrated gradients, occlusion, max-activating patches, PCA/t-SNE
    embeddings, nearest neighbours, class visualisations) every `expensive_every` epochs
    and once more at the end of training (not on the untrained model, whose attributions,
    embeddings and class images are noise); robustness (accuracy under corruption and
    attack, whose record costs about as much model time as all the other expensive
    monitors together) every `2 * expensive_every` epochs and at the end. Layers and probe
    images are chosen automatically when not given: up to four convolution layers spread
    from first to last, and `n_probes` validation images, one per class in turn. Monitors
    that need data are off without `validation_data` (or `probe`). Each monitor fails on
    its own: with `on_error="warn"` a failing monitor warns once and steps aside.

    Records run on a background thread, in order, so training resumes at once: the monitors
    work on a twin of the model (a clone loaded with a copy of the weights taken when the
    record set was due; `callbacks/twin.py`), and the training thread only copies the
    weights. A model that cannot be cloned faithfully (e.g. a subclassed model without
    `get_config`) keeps each record's model-dependent part on the training thread and
    sends the rest (t-SNE and PCA, drawing, PNG and JSON encoding, writing) to the
    background (`twin_reason` says why). `background=False` runs it all in line. In every
    record set the confusion matrix, the embedding and the nearest neighbours share one
    forward pass over the validation images.

    A time budget guards against models whose records cost more than their epochs: what
    the records cost the fit stays within `budget` (default 10%) of the training time so
    far. The training thread's part of a record is charged in full; a record on the twin
    runs beside training and is charged at the contention measured in this fit (training
    seconds lost per second of background records: how much longer the training batches
    during which the worker ran took than those during which it was idle, per second it
    ran, from the second epoch on, `callbacks/batch_clock.py`; without batch hooks, from
    the epochs' times against the worker's busy seconds; in full until one of them tells,
    and after the last epoch). A record runs while the callback is within its budget (an
    overshoot is paid back by skipping later records); the records of the last epoch and
    the final ones after it run only if their expected cost fits what is left, and a
    record during training must leave room, in the allowance projected to the last epoch,
    for the expensive monitors' final records (the trained model's). Setup and the records
    of the state before training are not charged; every later record is, a monitor's
    first (which traces) included. On shorter epochs records are thinned, one warning at
    the end of `fit` says which, and the scalar `cnnvis/overhead` logs the share used.
    `budget=None` runs every monitor on its schedule whatever it costs.

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
        output: the index of the output the monitors explain in a model with several
            outputs. Defaults to None (the first, with a warning).
        background: run the records on a background thread (see above and
            `MonitorCallback`). Defaults to True.
        twin: with `background`, compute whole records on a twin of the model (one more
            copy of the weights in memory, and up to `twin.SNAPSHOT_BYTES` of weight
            copies waiting for the worker); False keeps the model-dependent part on the
            training thread. Defaults to True.

    Raises:
        ValueError: for unknown monitor names, a budget that is not positive, options a
            monitor does not take, masks that do not match the images, or malformed data
            (at construction), and for misconfiguration against the model (an output
            it does not have, several inputs, unknown layers, probes that do not fit, ...)
            at the start of `fit`.
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
        output: int | None = None,
        background: bool = True,
        twin: bool = True,
    ):
        super().__init__()
        self.background = bool(background)
        self.use_twin = bool(twin)
        self.twin_model: keras.Model | None = None  # the model the monitors run on, if a twin
        self.twin_reason: str | None = None  # why there is no twin (with background on)
        self._runner: TwinRunner | None = None  # runs the hooks on the twin during a fit
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
        plan.check_options(self.options, REGISTRY)
        if output is not None and (not isinstance(output, int) or output < 0):
            raise ValueError(f"output must be an output index >= 0 or None; got {output!r}.")
        self.output = output
        self.x_val = self.y_val = self.y_pixels = self.label_kind = None
        if validation_data is not None:
            self.x_val, y = inputs.labelled_arrays(validation_data, max_examples)
            if len(self.x_val) == 0:
                raise ValueError("validation_data holds no examples; pass some or leave it None.")
            if y is not None:
                self.y_val, self.y_pixels, self.label_kind = plan.split_labels(y, len(self.x_val))
        probe = None if probe is None else inputs.as_image_array(probe, "probe images")
        self.masks_val = plan.check_masks(masks, probe, self.x_val, max_examples)
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
        self._skips: set = set()  # (monitor, step) of those records
        self._mark: float | None = None  # when the callback's own work last finished
        self._busy_at = 0.0  # the worker's busy total then
        self._ended: float | None = None  # when the last epoch of the fit ended
        self._began = False
        self._writer = None
        self._view: keras.Model | None = None  # the explained single-output model
        self._view_of: keras.Model | None = None  # the model it is a view of
        self.head = None
        self.not_applicable: dict[str, str] = {}  # monitor -> why it was skipped
        # One forward pass over the validation images per record set, for the monitors
        # that read the outputs or penultimate features there (see callbacks/shared.py).
        self._shared = None if self.x_val is None else SharedPass(self.x_val)
        self._finite = FiniteWeights()  # one check of the weights per record set
        self._clock = BatchClock()  # what records on the twin cost training's batches

    def _run(self, hook: str, *args, step: int = -1, charge: bool = True, after=None) -> None:
        """Calls `hook` on every monitor, charging the time to the budget (or, with
        `charge=False`, counting it as a one-time cost); with a twin, queues the calls for
        the worker (`after` runs there once they are done)."""
        account = functools.partial(self._account, charge)
        if self._runner is not None:
            self._runner.run(self.monitors, hook, args, step, account, self._invalidate, after)
            return
        self._invalidate()
        for monitor in self.monitors:
            start = time.perf_counter()
            getattr(monitor, hook)(*args)
            account(monitor, time.perf_counter() - start)

    def _invalidate(self) -> None:
        """Before a record set: the weights may have changed since the last one, so the
        shared pass and the shared check for non-finite weights are stale."""
        self._finite.invalidate()
        if self._shared is not None:
            self._shared.invalidate()

    # -- forwarding ---------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        if self._view is not None and self._view_of is not model:
            # A new model (e.g. reloaded from a file) fits on with the same callback.
            self._view, self._view_of = output_view(model, self.output or 0), model
            self._bind(self._view)
        for monitor in self.monitors:
            monitor.set_model(self._target(model))

    def _report_twin(self) -> None:
        """Reports, on the training thread, what failed in the worker since the last hook:
        a monitor's failure (a warning, or raised with `on_error="raise"`) or the twin's
        (every monitor stops, with one warning)."""
        if self._runner is None:
            return
        failure = self._runner.take_failure()
        if failure is not None:
            step, error = failure
            if self.on_error == "raise":
                raise error
            for monitor in self.monitors:
                monitor.disabled = True
            warnings.warn(
                f"CNNVisCallback: the model's twin failed at step {step} and every monitor is "
                f"switched off for the rest of this fit (training continues): "
                f"{type(error).__name__}: {error}. Pass twin=False to compute the records "
                "on the model itself.",
                RuntimeWarning,
                stacklevel=3,
            )
        for monitor in self.monitors:
            monitor._report_background()

    def set_params(self, params):
        super().set_params(params)
        for monitor in self.monitors:
            monitor.set_params(params)

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        self.budget.reset()
        self._ended = None
        self.skipped, self._skips = {}, set()
        self._began = False  # the first on_epoch_begin (initial records) is not charged
        self._clock.reset()
        if not self.monitors:
            self._view, self._view_of = self._prepare(), self.model
            self._bind(self._view)
            self.monitors = self._build(self._target())
            for monitor in self.monitors:
                monitor.set_model(self._target())
                monitor.set_params(self.params)
        for monitor, name in list(zip(self.monitors, self.names)):
            try:
                monitor.on_train_begin(logs)
            except ValueError as error:
                # What the user can fix was checked above: a monitor that still refuses
                # this model cannot do it (e.g. no receptive field through a layer).
                if self.on_error == "raise" and name not in self.not_applicable:
                    raise
                self._drop(monitor, name, str(error).rstrip("."))
        has_writer = self.budget.share is not None or self.twin_model is not None
        if has_writer and self.monitors and is_chief(self.model):
            from keras_cnnvis import summary
            from keras_cnnvis.callbacks.worker import RecordWorker

            self._writer = summary.acquire(self.monitors[0].run_dir)
            if self.twin_model is not None:
                if self._writer.worker is None:
                    self._writer.worker = RecordWorker(self._writer)
                self._runner = TwinRunner(self._view, self.twin_model, self._writer.worker)
        self.budget.concurrent = self._runner is not None
        self._set_mark()
        self.budget.one_time(self._mark - start)  # building and checking: not charged

    def on_epoch_begin(self, epoch, logs=None):
        # The first epoch's hook writes the initial records (tracing the monitors'
        # compiled functions): a one-time cost, not charged.
        self._report_twin()
        if self._runner is None or not self._began:  # later ones only report failures
            self._run("on_epoch_begin", epoch, _copy(logs), step=epoch, charge=self._began)
        self._began = True
        self._set_mark()
        if self._runner is not None:
            self._clock.start(self._mark, self._busy_at)

    def _set_mark(self) -> None:
        """The callback's own work ends now: training time (and the worker's busy seconds
        in it) count from here."""
        self._mark = time.perf_counter()
        self._busy_at = 0.0 if self._runner is None else self._runner.worker.busy_total()

    def on_train_batch_end(self, batch, logs=None):
        if self._runner is not None:  # (records beside training: time the batches)
            self._clock.batch(time.perf_counter(), self._runner.worker.busy_total())

    def on_epoch_end(self, epoch, logs=None):
        # Training time: everything since the callback's own work last finished (also in
        # custom loops that never call on_epoch_begin).
        if self._mark is not None:
            if self.budget.epochs_trained == 0:  # the epochs this fit trains in all
                total = (self.params or {}).get("epochs")
                self.budget.expect(None if total is None else int(total) - epoch)
            now = time.perf_counter()
            runner = self._runner
            busy = 0.0 if runner is None else runner.worker.busy_total() - self._busy_at
            self.budget.train(now - self._mark, busy)
            self._clock.end_epoch()
            self.budget.measured = self._clock.estimate
        self._report_twin()
        report = lambda: self._report_budget(epoch + 1)  # noqa: E731
        self._run("on_epoch_end", epoch, _copy(logs), step=epoch + 1, after=report)
        if self._runner is None:
            report()
        self._set_mark()

    def on_train_end(self, logs=None):
        self._ended = time.perf_counter()  # later background seconds are charged in full
        try:
            self._report_twin()
            self._run("on_train_end", _copy(logs))
            if self._runner is not None:
                self._runner.drain()
                self._report_twin()
            self._report_budget(None)
        finally:
            runner, self._runner = self._runner, None
            if runner is not None:
                runner.drain()  # (after a failure) the queued records still write
            if self._writer is not None:
                from keras_cnnvis import summary

                summary.release(self._writer)
                self._writer = None


def _copy(logs: dict | None) -> dict | None:
    """The epoch's logs as they are now (Keras reuses its dict)."""
    return None if logs is None else dict(logs)
