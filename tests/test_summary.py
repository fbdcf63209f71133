"""Summary writing: JSON records, images, laziness and one shared event file per run."""

import numpy as np
import pytest

from eventfiles import event_files, read_run
from keras_cnnvis import summary


def test_records_round_trip_through_tensorboard_reader(tmp_path):
    w = summary.LogWriter(str(tmp_path))
    assert not w.created and event_files(tmp_path) == []
    img = np.zeros((2, 4, 6, 3), np.float32)
    img[1, 0, 0] = [1.0, 0.5, 0.0]
    w.images("filters/c", img, step=3)
    w.scalar("health/c/noise_fraction", 0.25, step=3)
    w.json("json/health/c", {"a": np.float32(1.5), "b": float("nan"), "c": np.arange(3)}, 3, "health")
    w.close()
    run = read_run(str(tmp_path))
    assert run["filters/c"][0].plugin == "images" and run["filters/c"][0].step == 3
    pngs = run["filters/c"][0].value
    assert len(pngs) == 2 and pngs[1].shape == (4, 6, 3)
    np.testing.assert_array_equal(pngs[1][0, 0, ::-1], [255, 128, 0])
    assert run["health/c/noise_fraction"][0].value == pytest.approx(0.25)
    rec = run["json/health/c"][0]
    assert rec.plugin == "cnnvis" and rec.value == {"a": 1.5, "b": None, "c": [0, 1, 2]}


def test_shared_writer_is_one_event_file_closed_by_last_holder(tmp_path):
    a = summary.acquire(str(tmp_path))
    b = summary.acquire(str(tmp_path) + "/")
    assert a is b
    a.scalar("x", 1.0, 0)
    summary.release(a)
    assert a.created  # b still holds it
    b.scalar("y", 2.0, 0)
    summary.release(b)
    assert not a.created
    assert len(event_files(tmp_path)) == 1
    assert set(read_run(str(tmp_path))) == {"x", "y"}


def test_jsonable_rejects_unknown_types():
    with pytest.raises(TypeError, match="Cannot write object as JSON"):
        summary.jsonable({"x": object()})
    with pytest.raises(ValueError, match="Images must be"):
        summary.LogWriter("unused").images("t", np.zeros((2, 3, 4, 5, 6)), 0)
