"""The base class of every keras-cnnvis callback: scheduling, lazy shared writer, and the
rule that a failing visualisation never kills a training run.
"""

from __future__ import annotations

import abc
import contextlib
import os
import warnings

import keras

from keras_cnnvis import summary

_ON_ERROR = ("warn", "raise")


class MonitorCallback(keras.callbacks.Callback, metaclass=abc.ABCMeta):
    """Runs a visualisation every few epochs and writes it to `<log_dir>/<run_name>`.

    Subclasses implement `setup()` (validate the configuration against the model; raise
    `ValueError` for misconfiguration, before any epoch runs) and `log(step, logs)`
    (compute and write one record set through `self.writer`).

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

    Raises:
        ValueError: for a negative `every_n_epochs` or an unknown `on_error`.
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
        self._writer: summary.LogWriter | None = None
        self._first_epoch: int | None = None
        self._last_logged: int | None = None
        self._last_completed: int | None = None

    # -- what subclasses implement ------------------------------------------------------
    def setup(self) -> None:
        """Validates the configuration against `self.model`; raise ValueError if wrong."""

    @abc.abstractmethod
    def log(self, step: int, logs: dict | None = None) -> None:
        """Computes and writes the records for `step`."""

    # -- plumbing -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.every_n_epochs > 0 and not self.disabled

    @property
    def run_dir(self) -> str:
        return os.path.join(self.log_dir, self.run_name)

    @property
    def writer(self) -> summary.LogWriter:
        """The shared writer of this run directory (the event file opens on first write)."""
        if self._writer is None:
            self._writer = summary.acquire(self.run_dir)
        return self._writer

    def on_train_begin(self, logs=None):
        self.disabled = False
        self._first_epoch = None
        self._last_logged = None
        self._last_completed = None
        if self.every_n_epochs > 0:
            self.setup()

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch
            if self.log_initial and self.active:
                self._safe_log(epoch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._last_completed = epoch + 1
        if self.active and (epoch + 1) % self.every_n_epochs == 0:
            self._safe_log(epoch + 1, logs)

    def on_train_end(self, logs=None):
        try:
            if (
                self.active
                and self._last_completed is not None
                and self._last_logged != self._last_completed
                and self.log_at_end
            ):
                self._safe_log(self._last_completed, logs)
        finally:
            if self._writer is not None:
                summary.release(self._writer)
                self._writer = None

    log_at_end = False
    """Whether a final record is written at train end when the last epoch was skipped."""

    def _safe_log(self, step: int, logs) -> None:
        try:
            self.log(step, logs)
            self._last_logged = step
            if self._writer is not None:
                self._writer.flush()
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
