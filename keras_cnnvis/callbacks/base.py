"""The base class of every keras-cnnvis callback: scheduling, lazy shared writer, and the
rule that a failing visualisation never kills a training run.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import os
import threading
import time
import warnings

import keras

from keras_cnnvis import summary
from keras_cnnvis.callbacks.finite import weights_finite
from keras_cnnvis.model.traps import warn_onednn_trap

_ON_ERROR = ("warn", "raise")


def is_chief(model=None) -> bool:
    """Whether this process should write logs (the chief of a multi-worker cluster).

    Reads the cluster from the model's distribution strategy, else from `TF_CONFIG`. A
    single process, `MirroredStrategy` and the chief (or worker 0 when the cluster has no
    chief) are chiefs.
    """
    task_type, task_id, jobs = None, 0, ()
    resolver = getattr(getattr(model, "distribute_strategy", None), "cluster_resolver", None)
    if resolver is not None and getattr(resolver, "task_type", None) is not None:
        task_type, task_id = resolver.task_type, resolver.task_id or 0
        jobs = tuple(resolver.cluster_spec().as_dict())
    elif os.environ.get("TF_CONFIG"):
        try:
            config = json.loads(os.environ["TF_CONFIG"])
        except ValueError:
            return True
        task = config.get("task") or {}
        task_type, task_id = task.get("type"), int(task.get("index", 0) or 0)
        jobs = tuple(config.get("cluster") or {})
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in jobs


def check_writable(path: str) -> None:
    """Raises if `path` (or its nearest existing parent) cannot be written; creates nothing."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"Log directory '{path}' cannot be written ('{probe}' is not a writable "
            "directory); pass a log_dir you can write to."
        )


def check_channels_last(model) -> None:
    """Raises ValueError if any layer of `model` computes in `channels_first` format."""
    from keras_cnnvis.model import iter_layers

    for info in iter_layers(model):
        if getattr(info.layer, "data_format", None) == "channels_first":
            raise ValueError(
                f"Layer '{info.path}' of model '{model.name}' uses "
                "data_format='channels_first'; keras-cnnvis visualises channels-last "
                "image models (batch, height, width, channels). Build the model with "
                "data_format='channels_last' (the Keras default) to use these callbacks."
            )


def require_probe(probe, owner: str, example: str = "a few validation images") -> None:
    """Raises ValueError when a callback that needs probe images got none."""
    if probe is None:
        raise ValueError(
            f"{owner} needs probe images: pass probe=<numpy array of shape "
            f"(N, height, width, channels)>, e.g. {example}."
        )


def check_image_input(model, owner: str) -> None:
    """Raises ValueError if `model` does not take images `(height, width, channels)`
    (a model whose input shape is unknown passes)."""
    from keras_cnnvis.model import input_shape

    shape = input_shape(model)
    if shape is not None and len(shape) != 3:
        raise ValueError(
            f"{owner} needs an image model (inputs of shape (height, width, channels)); "
            f"model '{model.name}' takes {shape}."
        )


class MonitorCallback(keras.callbacks.Callback, metaclass=abc.ABCMeta):
    """Runs a visualisation every few epochs and writes it to `<log_dir>/<run_name>`.

    Subclasses implement `setup()` (validate the configuration against the model; raise
    `ValueError` for misconfiguration, before any epoch runs) and `log(step, logs)`
    (compute and write one record set through `self.writer`).

    With `background = True` (the default) only the model-dependent part of a record runs
    on the training thread: the writes `log()` makes are queued, and `log()` may return a
    callable, the part of the record that does not need the model (projections,
    rendering, writing through `self.writer`); both run on the run directory's
    `RecordWorker` thread, in order with every other record written there, and the event
    file is flushed after each record set. Arrays and payloads handed to the writer must
    not change afterwards; the callable must not touch the model. `on_train_end` waits for
    the queue. A failure in the worker switches this monitor off (warned on the training
    thread at its next hook, raised there with `on_error="raise"`). `background = False`
    runs everything in line.

    Steps are counts of completed epochs: the state before training is logged at
    `step = initial_epoch` (when `log_initial`), the state after epoch `e` (0-based) at
    `step = e + 1`. Work happens in epoch hooks only, so Keras keeps its asynchronous
    batch dispatch.

    Args:
        log_dir: the TensorBoard log directory (the one given to `tensorboard --logdir`).
        every_n_epochs: log after every N-th epoch; 0 turns the callback off. Defaults to 1.
        log_initial: also log the state before the first epoch. Defaults to True.
        run_name: the run subdirectory written into. Defaults to `"cnnvis"`.
        on_error: `"warn"` (warn once, switch this monitor off, training goes on) or
            `"raise"` (re-raise; for tests). Defaults to `"warn"`.

    Under a multi-worker strategy only the chief writes. While the training loss or a
    weight of the model is NaN or infinite (a diverged run), logging is skipped with one
    warning (subclasses that diagnose such weights set `skip_non_finite_weights = False`).

    Raises:
        ValueError: for a negative `every_n_epochs` or an unknown `on_error`; at
            `on_train_begin`, for a log directory that cannot be written or a
            `channels_first` model.
    """

    def __init__(
        self,
        log_dir: str,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise ValueError(
                f"every_n_epochs must be an integer >= 0 (0 turns the callback off); "
                f"got {every_n_epochs!r}."
            )
        if on_error not in _ON_ERROR:
            raise ValueError(f"on_error must be one of {_ON_ERROR}; got {on_error!r}.")
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = every_n_epochs
        self.log_initial = bool(log_initial)
        self.run_name = run_name
        self.on_error = on_error
        self.disabled = False
        self.chief = True
        self.log_seconds: list[float] = []  # training-thread seconds of each record
        self.wait_seconds: list[float] = []  # of which waiting for room in the worker's queue
        self.background_seconds: list[float] = []  # worker seconds of each record
        self.background_error: tuple | None = None  # (step, error) of a failed background task
        self._recorder: summary.Recorder | None = None
        self._recording_thread: int | None = None
        self._warned_nonfinite = False
        self._writer: summary.LogWriter | None = None
        self._first_epoch: int | None = None
        self._last_logged: int | None = None
        self._last_completed: int | None = None

    # -- what subclasses implement ------------------------------------------------------
    def setup(self) -> None:
        """Validates the configuration against `self.model`; raise ValueError if wrong."""

    @abc.abstractmethod
    def log(self, step: int, logs: dict | None = None):
        """Computes and writes the records for `step`; may return a callable of no
        arguments: the rest of the record, which does not need the model (see the class
        docstring)."""

    background = True
    """Whether the records' model-free part runs on the background worker."""

    shared = None
    """A `SharedPass` over the validation images this monitor reads instead of running its
    own forward pass (set by `CNNVisCallback` through `share`), or None."""

    shared_rows: dict = {}
    """Which rows of the shared pass's images are this monitor's images, by role."""

    def share(self, shared, **rows) -> None:
        """Lets this monitor read `shared` (a `SharedPass`); `rows` maps each of its image
        sets (e.g. `data=`, `query=`) to row indices of the shared images."""
        self.shared, self.shared_rows = shared, rows

    def _shared_for(self, *roles: str):
        """The shared pass when it is bound to this monitor's model and knows `roles`."""
        shared = self.shared
        if shared is None or shared.model is not self.model:
            return None
        return shared if all(role in self.shared_rows for role in roles) else None

    # -- plumbing -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.every_n_epochs > 0 and not self.disabled and self.chief

    @property
    def run_dir(self) -> str:
        return os.path.join(self.log_dir, self.run_name)

    @property
    def writer(self) -> summary.LogWriter:
        """The shared writer of this run directory (the event file opens on first write);
        while `log()` runs with `background` on, a `summary.Recorder` queuing its writes."""
        if self._recorder is not None and threading.get_ident() == self._recording_thread:
            return self._recorder
        return self.run_writer

    @property
    def run_writer(self) -> summary.LogWriter:
        """The run directory's shared `LogWriter` itself, never the `Recorder` standing in
        for it: the key of state shared by the monitors of one run."""
        if self._writer is None:
            self._writer = summary.acquire(self.run_dir)
        return self._writer

    def _worker(self):
        """The background worker of this run directory's writer (one per writer)."""
        from keras_cnnvis.callbacks.worker import RecordWorker

        writer = self.run_writer
        if writer.worker is None:
            writer.worker = RecordWorker(writer)
        return writer.worker

    def drain(self) -> None:
        """Waits until the background worker has written every queued record, then reports
        a background failure (a warning, or the error with `on_error="raise"`)."""
        if self._writer is not None and self._writer.worker is not None:
            self._writer.worker.drain()
        self._report_background()

    def _report_background(self) -> None:
        """Warns (or raises) once on the training thread about a failed background task."""
        failure, self.background_error = self.background_error, None
        if failure is None:
            return
        step, error = failure
        self.disabled = True
        if self.on_error == "raise":
            raise error
        warnings.warn(
            f"{type(self).__name__} failed at step {step} (in the background worker) and is "
            f"switched off for the rest of this fit (training continues): "
            f"{type(error).__name__}: {error}",
            RuntimeWarning,
            stacklevel=3,
        )

    def on_train_begin(self, logs=None):
        self.disabled = False
        self.background_error = None
        self._warned_nonfinite = False
        self._first_epoch = None
        self._last_logged = None
        self._last_completed = None
        self.chief = is_chief(self.model)
        if self.every_n_epochs > 0:
            if self.chief:
                check_writable(self.run_dir)
            check_channels_last(self.model)
            warn_onednn_trap(self.model, "keras-cnnvis")  # once per model
            self.setup()

    def on_epoch_begin(self, epoch, logs=None):
        self._report_background()
        if self._first_epoch is None:
            self._first_epoch = epoch
            if (
                self.log_initial
                and self.active
                and not self._diverged(None)
                and self._allowed("initial")
            ):
                self._safe_log(epoch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._last_completed = epoch + 1
        self._report_background()
        if self.active and (epoch + 1) % self.every_n_epochs == 0:
            if self._diverged(logs) or not self._allowed("epoch"):
                return
            self._safe_log(epoch + 1, logs)

    skip_non_finite_weights = True
    """Whether to skip logging while the model's weights hold NaN/inf (a diverged run)."""

    finite_weights = None
    """An optional `FiniteWeights` shared with other monitors (set by `CNNVisCallback`):
    the weights are checked once per record set instead of once per monitor."""

    def _diverged(self, logs) -> bool:
        """Skips (warning once) while the loss or, unless `skip_non_finite_weights` is
        False, any weight of the model is NaN or infinite."""
        loss = (logs or {}).get("loss")
        try:
            finite = loss is None or math.isfinite(float(loss))
        except (TypeError, ValueError):
            finite = True
        what = f"the training loss is {loss}"
        check = self.finite_weights or weights_finite
        if finite and self.skip_non_finite_weights and not check(self.model):
            finite, what = False, "the model's weights hold NaN or infinite values"
        if not finite and not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(
                f"{type(self).__name__}: {what} (training diverged); skipping this "
                "visualisation while training stays diverged.",
                RuntimeWarning,
                stacklevel=3,
            )
        return not finite

    def on_train_end(self, logs=None):
        try:
            if (
                self.active
                and self._last_completed is not None
                and self._last_logged != self._last_completed
                and self.log_at_end
                and not self._diverged(logs)
                and self._allowed("final")
            ):
                self._safe_log(self._last_completed, logs)
            self.drain()
        finally:
            if self._writer is not None:
                summary.release(self._writer)
                self._writer = None

    log_at_end = False
    """Whether a final record is written at train end when the last epoch was skipped."""

    gate = None
    """An optional `gate(monitor, phase) -> bool` asked before each due record, with
    `phase` one of `"initial"`, `"epoch"`, `"final"`; False skips that record.
    `CNNVisCallback` uses it for its time budget."""

    def _allowed(self, phase: str) -> bool:
        return self.gate is None or bool(self.gate(self, phase))

    def _safe_log(self, step: int, logs) -> None:
        start = time.perf_counter()
        try:
            if self.background:
                self._log_in_background(step, logs)
            else:
                finish = self.log(step, logs)
                if finish is not None:
                    finish()
                if self._writer is not None:
                    self._writer.flush()
            self.log_seconds.append(time.perf_counter() - start)
            self._last_logged = step
        except Exception as error:  # a visualisation must not kill training
            if self.on_error == "raise":
                raise
            self.disabled = True
            warnings.warn(
                f"{type(self).__name__} failed at step {step} and is switched off for the "
                f"rest of this fit (training continues): {type(error).__name__}: {error}",
                RuntimeWarning,
                stacklevel=2,
            )
            if self._writer is not None:
                with contextlib.suppress(Exception):  # keep what is already written
                    self._writer.flush()

    def _log_in_background(self, step: int, logs) -> None:
        """Runs `log()` with its writes queued, then hands them and its returned callable
        to the worker as one task."""
        recorder = summary.Recorder(self.writer)
        self._recorder, self._recording_thread = recorder, threading.get_ident()
        try:
            finish = self.log(step, logs)
        finally:
            self._recorder = self._recording_thread = None

        def task() -> None:
            recorder.replay()
            if finish is not None:
                finish()

        self.wait_seconds.append(self._worker().submit(self, step, task))
