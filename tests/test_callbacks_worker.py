"""The background worker (keras_cnnvis/callbacks/worker.py): records written through it are the
records written in line, in the same order and steps; a failure in it switches off only its
monitor; a process killed with records still queued leaves every earlier step readable."""

from __future__ import annotations

import json
import os
import threading
import warnings

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader

from callback_helpers import kill_when_ready
from eventfiles import event_files, read_run
from keras_cnnvis import summary
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.worker import RecordWorker
from robustness_models import CLASSES, LIGHT, shapes_data, tiny_cnn
from worker_helpers import ToyMonitor

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def data():
    return shapes_data()


def file_order(run_dir: str) -> list[tuple[str, int]]:
    """`(tag, step)` of every record in the order the event files hold them."""
    out = []
    for name in event_files(run_dir):
        for event in event_file_loader.EventFileLoader(os.path.join(run_dir, name)).Load():
            for value in event.summary.value:
                out.append((value.tag, int(event.step)))
    return out


def comparable(record) -> object:
    """A record's value, without what measures time (the robustness record's seconds)."""
    if record.plugin == "images":
        return [np.asarray(img).tobytes() for img in record.value]
    if record.plugin == "cnnvis" and isinstance(record.value, dict):
        return json.dumps({k: v for k, v in record.value.items() if k != "seconds"})
    return record.value


@pytest.mark.parametrize("twin", [True, False], ids=["twin", "split"])
def test_records_through_the_worker_equal_records_written_in_line(tmp_path, data, twin):
    (x, y), (x_val, y_val, masks) = data
    kwargs = dict(
        validation_data=(x_val, y_val),
        masks=masks,
        class_names=CLASSES,
        n_probes=5,
        expensive_every=1,
        options=LIGHT,
        budget=None,
    )
    worker = CNNVisCallback(str(tmp_path / "worker"), twin=twin, **kwargs)
    in_line = CNNVisCallback(str(tmp_path / "inline"), background=False, **kwargs)
    model = tiny_cnn()
    # One fit feeds both: each record set is computed from the same weights.
    model.fit(x, y, epochs=2, verbose=0, callbacks=[worker, in_line])
    assert worker.names == in_line.names and len(worker.names) >= 12
    assert not any(m.background for m in in_line.monitors)
    assert not any(m.background_seconds for m in in_line.monitors)
    assert in_line.twin_model is None and all(m.model is model for m in in_line.monitors)
    if twin:
        # Whole records ran in the worker on the twin (never on the trained model).
        assert worker.twin_model is not None and worker.twin_model is not model
        assert all(m.model is worker.twin_model for m in worker.monitors)
        assert not any(m.background for m in worker.monitors)
        assert all(len(m.log_seconds) > 0 for m in worker.monitors)
    else:
        assert worker.twin_model is None and all(m.background for m in worker.monitors)
        # The worker did the model-free part: its monitors recorded background time.
        assert all(len(m.background_seconds) == len(m.log_seconds) > 0 for m in worker.monitors)

    a = read_run(str(tmp_path / "worker" / "cnnvis"))
    b = read_run(str(tmp_path / "inline" / "cnnvis"))
    assert set(a) == set(b) and len(a) > 40
    for tag in a:
        assert [r.step for r in a[tag]] == [r.step for r in b[tag]], tag
        assert [comparable(r) for r in a[tag]] == [comparable(r) for r in b[tag]], tag
    # The same records in the same order in the event file.
    order = file_order(str(tmp_path / "worker" / "cnnvis"))
    assert order == file_order(str(tmp_path / "inline" / "cnnvis"))
    assert [s for _, s in order] == sorted(s for _, s in order)  # steps never go back
    # The Projector files (written by the embedding's background part) are the same too.
    inline_dir = tmp_path / "inline" / "cnnvis"
    projector = sorted(
        path.relative_to(inline_dir)
        for path in inline_dir.rglob("*")
        if path.is_file() and "tfevents" not in path.name and path.name != "checkpoint"
    )  # the checkpoint file holds timestamps
    assert any(path.suffix == ".tsv" for path in projector)
    for name in projector:
        path = inline_dir / name
        assert (tmp_path / "worker" / "cnnvis" / name).read_bytes() == path.read_bytes()


def test_slow_background_parts_keep_every_step_in_order(tmp_path, data):
    (x, y), _ = data
    slow = ToyMonitor(str(tmp_path), name="slow", pause=0.15)
    fast = ToyMonitor(str(tmp_path), name="fast")
    tiny_cnn().fit(x, y, epochs=4, verbose=0, callbacks=[slow, fast])
    # on_train_end waited for the queue: every record is there once fit returns.
    order = file_order(str(tmp_path / "cnnvis"))
    expected = []
    for step in range(5):  # submission order: slow then fast, step by step
        for name in ("slow", "fast"):
            expected += [(f"toy/{name}/kernel_sum", step), (f"json/toy/{name}", step)]
    assert order == expected
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.value["step"] for r in run["json/toy/slow"]] == [0, 1, 2, 3, 4]
    # The training thread did not wait for the slow renderer: its log() calls are short.
    assert sum(slow.background_seconds) >= 5 * 0.15
    assert sum(slow.log_seconds) < sum(slow.background_seconds)


def test_an_exception_in_the_worker_switches_off_only_that_monitor(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    failing = ToyMonitor(str(tmp_path), name="bad", fail_at=2)
    cnnvis = CNNVisCallback(
        str(tmp_path),
        validation_data=(x_val, y_val),
        include=("filters", "confusion"),
        budget=None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_cnn().fit(x, y, epochs=5, verbose=0, callbacks=[failing, cnnvis])
    assert len(history.history["loss"]) == 5  # training went on
    failures = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert failures == [
        "ToyMonitor failed at step 2 (in the background worker) and is switched off for the "
        "rest of this fit (training continues): IndexError: background bug at 2"
    ]
    assert failing.disabled and not any(m.disabled for m in cnnvis.monitors)
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["toy/bad/kernel_sum"]] == [0, 1]  # nothing from 2 on
    assert [r.step for r in run["confusion/matrix"]] == [0, 1, 2, 3, 4, 5]
    assert [r.step for r in run["filters/conv_a"]] == [0, 1, 2, 3, 4, 5]


def test_on_error_raise_raises_a_background_failure_on_the_training_thread(tmp_path, data):
    (x, y), _ = data
    failing = ToyMonitor(str(tmp_path), fail_at=0)
    failing.on_error = "raise"
    with pytest.raises(IndexError, match="background bug at 0"):
        tiny_cnn().fit(x, y, epochs=2, verbose=0, callbacks=[failing])


def test_worker_waits_when_full_and_runs_tasks_in_order(tmp_path):
    writer = summary.LogWriter(str(tmp_path))
    worker = RecordWorker(writer, max_pending=2)

    class Owner:
        background_error = None
        background_seconds: list = []

    owner, ran, gate = Owner(), [], threading.Event()
    waits = [worker.submit(owner, 0, lambda: gate.wait(5))]  # blocks the worker
    waits += [worker.submit(owner, i, lambda i=i: ran.append(i)) for i in range(1, 3)]
    releaser = threading.Timer(0.3, gate.set)
    releaser.start()
    waits.append(worker.submit(owner, 3, lambda: ran.append(3)))  # queue full: waits
    worker.drain()
    assert ran == [1, 2, 3]
    assert max(waits[:3]) < 0.2 and waits[3] >= 0.2  # only the submit beyond the bound waited
    assert worker.thread.name == "keras-cnnvis-records"
    worker.close()
    assert not worker.thread.is_alive()
    writer.close()


def test_sigkill_with_records_queued_leaves_the_earlier_steps_readable(tmp_path):
    log_dir, marker = tmp_path / "logs", tmp_path / "blocked"
    run_dir = str(log_dir / "cnnvis")
    queued = str(marker) + ".queued"  # written once records wait behind the blocked one
    kill_when_ready(
        os.path.join(HERE, "worker_kill_script.py"),
        [log_dir, marker],
        lambda: os.path.exists(queued),
    )
    run = read_run(run_dir)
    # The toy monitor blocked at step 3: steps 0-2 of every monitor were written, in full.
    assert [r.value["step"] for r in run["json/toy/a"]] == [0, 1, 2]
    for tag in ("confusion/matrix", "json/confusion/matrix", "filters/conv_a"):
        assert [r.step for r in run[tag]][:3] == [0, 1, 2], tag
        assert max(r.step for r in run[tag]) <= 3, tag  # queued ones never reached the file
    assert run["json/confusion/matrix"][2].value["n_examples"] == 24


def test_a_task_that_submits_runs_the_new_task_at_once_in_order(tmp_path):
    writer = summary.LogWriter(str(tmp_path))
    worker = RecordWorker(writer, max_pending=1)  # a full queue cannot hold the inner task
    order = []

    class Owner:
        background_error = None

    def outer():
        order.append("outer starts")
        worker.submit(Owner(), 1, lambda: order.append("inner"))
        order.append("outer ends")

    worker.submit(Owner(), 0, outer)
    worker.submit(Owner(), 2, lambda: order.append("next"))
    worker.drain()
    assert order == ["outer starts", "inner", "outer ends", "next"]
    worker.close()
    writer.close()


def test_a_task_submitted_from_a_running_task_is_busy_time_counted_once(tmp_path):
    import time

    writer = summary.LogWriter(str(tmp_path))
    worker = RecordWorker(writer)
    owner = ToyMonitor(str(tmp_path))

    def inner():
        time.sleep(0.2)

    def outer():
        time.sleep(0.2)
        worker.submit(owner, 1, inner)  # on the worker's thread: runs at once, inside outer

    start, before = time.perf_counter(), worker.busy_total()
    worker.submit(owner, 1, outer)
    worker.drain()
    end = time.perf_counter()
    busy = worker.busy_total() - before
    assert 0.4 <= busy <= end - start  # both sleeps, the inner one not counted twice
    assert before == 0.0 and worker.busy_total() == busy  # nothing runs: the total stays
    writer.close()
