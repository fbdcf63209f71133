"""Whole records off the training thread: `CNNVisCallback` runs its monitors on a twin of the
model (a clone with the same layers and names) in the background worker, loaded with a copy
of the weights taken at the hook, so the training thread pays only for that copy.

Without a twin a record's model-dependent part runs on the training thread while training
waits (the model's variables change as soon as training resumes). The twin holds the
weights of the moment the record set was due, so the worker can compute it while the next
epoch trains. Models that cannot be cloned faithfully (subclassed models without a
`get_config`, layers whose config does not rebuild them, distribution strategies) fall back
to that split, with the reason kept in `CNNVisCallback.twin_reason`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np

SNAPSHOT_BYTES = 256 * 2**20
"""Weight copies waiting for the worker at most (the training thread waits beyond it)."""

MAX_SNAPSHOTS = 8
"""Record sets waiting for the worker at most, whatever the model's size."""


def _distributed(model: keras.Model) -> bool:
    strategy = getattr(model, "distribute_strategy", None)
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    return replicas != 1 or getattr(strategy, "cluster_resolver", None) is not None


def _clone(model: keras.Model) -> keras.Model:
    """A clone of `model`, with its input layer named like the original's (Keras names a
    cloned functional model's input after its tensor)."""
    inputs = [layer for layer in model.layers if isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential) or len(inputs) != 1 or len(model.inputs) != 1:
        return keras.models.clone_model(model)
    tensor = model.inputs[0]
    named = keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=inputs[0].name)
    return keras.models.clone_model(model, input_tensors=named)


def _outputs(model: keras.Model, images: np.ndarray) -> list:
    return [np.asarray(out) for out in keras.tree.flatten(model(images, training=False))]


def make_twin(
    model: keras.Model, images: np.ndarray | None = None
) -> tuple[keras.Model | None, str | None]:
    """A clone of `model` with its weights, checked to compute what `model` computes.

    Example:

    ```python
    twin, reason = make_twin(model, probe)
    if twin is None:
        print("no twin:", reason)
    ```

    Args:
        model: a built Keras model.
        images: a few inputs on which the twin's outputs must equal the model's, or None
            (then only the layers and weights are compared).

    Returns:
        `(twin, None)`, or `(None, reason)` when the model cannot be cloned faithfully.
    """
    if _distributed(model):
        return None, "the model is trained under a distribution strategy"
    try:
        twin = _clone(model)
    except Exception as error:  # noqa: BLE001 - any failure means no twin
        return None, f"keras.models.clone_model failed ({type(error).__name__}: {error})"
    if [layer.name for layer in twin.layers] != [layer.name for layer in model.layers]:
        return None, "its clone names its layers differently"
    shapes = [tuple(w.shape) for w in model.weights]
    if shapes != [tuple(w.shape) for w in twin.weights]:
        return None, "its clone holds different weights"
    try:
        twin.set_weights(model.get_weights())
        if images is not None and len(images):
            sample = np.asarray(images[:2])
            for a, b in zip(_outputs(model, sample), _outputs(twin, sample)):
                if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                    return None, "its clone computes different outputs"
    except Exception as error:  # noqa: BLE001
        return None, f"its clone cannot run ({type(error).__name__}: {error})"
    return twin, None


class TwinRunner:
    """Runs monitor hooks on a twin of the model in the run's background worker.

    Each `run` copies the model's weights on the calling (training) thread and queues one
    task: load the copy into the twin, then call the hook of every monitor in order. A
    monitor's exception is stored on it (`background_error`, reported on the training
    thread by its `_report_background`) and the others run on. A failure outside the
    monitors (e.g. weights that no longer load) is kept in `failure` and the later tasks
    do nothing (see `take_failure`); every task frees its copy's slot, run or not. At most
    `max_pending` copies wait (from `SNAPSHOT_BYTES`, at most `MAX_SNAPSHOTS`); beyond that
    `run` waits for the worker.

    Example:

    ```python
    runner = TwinRunner(model, twin, worker)
    runner.run(monitors, "on_epoch_end", (epoch, logs), step=epoch + 1)
    runner.drain()
    ```

    Args:
        model: the model being trained.
        twin: its twin (`make_twin`), the model every monitor is bound to.
        worker: the run directory's `RecordWorker`.
    """

    def __init__(self, model: keras.Model, twin: keras.Model, worker: Any):
        self.model, self.twin, self.worker = model, twin, worker
        size = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
        self.max_pending = int(np.clip(SNAPSHOT_BYTES // max(1, size), 1, MAX_SNAPSHOTS))
        self._slots = threading.BoundedSemaphore(self.max_pending)
        self.snapshot_seconds: list[float] = []  # training thread: copying the weights
        self.failure: tuple | None = None  # (step, error) outside every monitor
        self._reported = False

    def run(
        self,
        monitors: Sequence[Any],
        hook: str,
        args: tuple,
        step: int,
        charge: Callable[..., None] | None = None,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Queues `hook(*args)` of every monitor on the twin, with the model's weights now.

        Args:
            monitors: the monitors, bound to the twin.
            hook: the `keras.callbacks.Callback` method to call.
            args: its arguments.
            step: the step the records are for (reported with a failure).
            charge: called in the worker as `charge(monitor, seconds)` for each monitor's
                hook, then as `charge(None, seconds)` for the copy of the weights. Defaults
                to None.
            before: called in the worker after the weights are loaded, before the monitors
                (e.g. a shared pass's `invalidate`). Defaults to None.
            after: called in the worker after the monitors. Defaults to None.
        """
        self._slots.acquire()
        start = time.perf_counter()
        try:
            weights = self.model.get_weights()
        except Exception as error:  # noqa: BLE001 - reported by take_failure, never raised here
            self._slots.release()
            self.failure = self.failure or (step, error)
            return
        copied = time.perf_counter() - start
        self.snapshot_seconds.append(copied)

        def task() -> None:
            try:
                if self.failure is not None:
                    return  # the twin is in an unknown state: nothing more runs on it
                self.twin.set_weights(weights)
                weights.clear()  # the copy is loaded: free it before the records run
                if before is not None:
                    before()
                for monitor in monitors:
                    begin = time.perf_counter()
                    try:
                        getattr(monitor, hook)(*args)
                    except BaseException as error:  # noqa: BLE001 - reported by the monitor
                        monitor.background_error = (step, error)
                        monitor.disabled = True
                    if charge is not None:
                        charge(monitor, time.perf_counter() - begin)
                if charge is not None:  # the copy, paid after like the records
                    charge(None, copied)
                if after is not None:
                    after()
            except BaseException as error:  # noqa: BLE001 - reported by take_failure
                self.failure = self.failure or (step, error)
            finally:
                weights.clear()
                self._slots.release()

        self.worker.submit(self, step, task)

    def drain(self) -> None:
        """Waits until every queued record set is written."""
        self.worker.drain()

    def take_failure(self) -> tuple | None:
        """`(step, error)` of a failure outside the monitors, the first time it is asked
        for (None before and after); the runner stays stopped."""
        if self.failure is None or self._reported:
            return None
        self._reported = True
        return self.failure


__all__ = ["MAX_SNAPSHOTS", "SNAPSHOT_BYTES", "TwinRunner", "make_twin"]
