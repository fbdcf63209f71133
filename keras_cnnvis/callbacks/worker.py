"""The background worker of the callbacks: what a record does without the model (projections,
rendering, PNG and JSON encoding, writing) runs on one thread per run directory, in order,
so training resumes as soon as the model-dependent part of a record is done.

A monitor's `log()` runs on the training thread; the writes it makes are queued (see
`summary.Recorder`) and so is the callable it may return (its CPU-side part). The worker
replays them on the real writer in submission order and flushes the event file after each
record set, so a process killed mid-run leaves every completed record readable. The queue
is bounded: when the worker falls behind, the training thread waits (the wait is measured).
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from typing import Any, Callable

MAX_PENDING = 8
"""Record sets queued at most before the training thread waits for the worker."""


class RecordWorker:
    """One thread that runs record tasks in order and flushes the writer after each.

    Example:

    ```python
    worker = RecordWorker(writer)
    waited = worker.submit(owner, step, lambda: writer.scalar("loss", 0.5, step))
    worker.drain()  # every queued task has run
    ```

    Args:
        writer: the `summary.LogWriter` the tasks write into (flushed after each task).
        max_pending: tasks queued at most; `submit` blocks beyond it. Defaults to
            `MAX_PENDING`.

    The worker never raises: a task's exception is stored on its owner
    (`owner.background_error = (step, error)`), the owner is disabled (`owner.disabled =
    True`) and the owner's later tasks are dropped; the owner reports it on the training
    thread. Each finished task appends its seconds to `owner.background_seconds`.
    """

    def __init__(self, writer: Any, max_pending: int = MAX_PENDING):
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_pending)))
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy_since: float | None = None  # start of the task running now
        self._busy_done = 0.0  # seconds of the tasks finished so far
        _LIVE.add(self)

    def busy_total(self) -> float:
        """Seconds the worker has run tasks so far, the one running now included (the
        difference of two calls is its busy seconds between them)."""
        with self._lock:
            since = self._busy_since
            running = 0.0 if since is None else time.perf_counter() - since
            return self._busy_done + running

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread (None before the first task)."""
        return self._thread

    def submit(self, owner: Any, step: int, task: Callable[[], None]) -> float:
        """Queues `task` (run after every task queued before it); returns the seconds the
        caller waited for room in the queue. Called from a running task (the worker's own
        thread), it runs `task` at once: it comes right after the running task, and
        waiting for room there would wait for itself."""
        if threading.current_thread() is self._thread:
            self._execute(owner, step, task)
            return 0.0
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="keras-cnnvis-records", daemon=True
                )
                self._thread.start()
        start = time.perf_counter()
        self._queue.put((owner, step, task))
        return time.perf_counter() - start

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                with self._lock:
                    self._busy_since = time.perf_counter()
                self._execute(*item)  # (tasks it submits run inside it: counted once)
            finally:
                with self._lock:
                    if self._busy_since is not None:
                        self._busy_done += time.perf_counter() - self._busy_since
                    self._busy_since = None
                self._queue.task_done()

    def _execute(self, owner: Any, step: int, task: Callable[[], None]) -> None:
        """Runs one task (unless its owner failed before), stores its failure on the
        owner, flushes the writer and adds the task's seconds to the owner's."""
        if getattr(owner, "background_error", None) is not None:
            return  # the owner failed earlier: its later records are dropped
        start = time.perf_counter()
        try:
            task()
        except BaseException as error:  # noqa: BLE001 - reported on the training thread
            owner.background_error = (step, error)
            owner.disabled = True
        finally:
            try:
                self.writer.flush()
            except Exception:  # noqa: BLE001 - a full disk must not kill the thread
                pass
        seconds = getattr(owner, "background_seconds", None)
        if seconds is not None:
            seconds.append(time.perf_counter() - start)

    def drain(self, timeout: float | None = None) -> bool:
        """Waits until every queued task has run; returns False if `timeout` (seconds)
        passed first. On the worker's own thread (a task that drains, e.g. a monitor's
        `on_train_end` run by the worker) it returns at once: the tasks queued after the
        running one cannot run before it ends."""
        if self._thread is None or not self._thread.is_alive():
            return True
        if threading.current_thread() is self._thread:
            return True
        if timeout is None:
            self._queue.join()
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Runs what is queued, then stops the thread (a later `submit` starts a new one)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return  # (a task closing its own writer: the thread runs on)
        self._queue.put(None)
        thread.join()


_LIVE: "weakref.WeakSet[RecordWorker]" = weakref.WeakSet()


@atexit.register
def _drain_at_exit() -> None:
    """An interpreter that exits mid-fit (an exception, a script's end) still writes what
    was queued (within a minute per worker)."""
    for worker in list(_LIVE):
        worker.drain(timeout=60.0)


__all__ = ["MAX_PENDING", "RecordWorker"]
