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
    w.json(
        "json/health/c", {"a": np.float32(1.5), "b": float("nan"), "c": np.arange(3)}, 3, "health"
    )
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


def test_gray_and_rgba_images_keep_their_channels_and_size(tmp_path):
    w = summary.LogWriter(str(tmp_path))
    gray = np.zeros((1, 5, 7, 1), np.uint8)
    gray[0, 4, 6, 0] = 200
    rgba = np.zeros((1, 3, 2, 4), np.float32)
    rgba[0, 2, 1] = [1.0, 0.0, 0.0, 0.5]
    w.images("g", gray, 1)
    w.images("r", rgba, 1)
    w.close()
    run = read_run(str(tmp_path))
    (g,), (r,) = run["g"][0].value, run["r"][0].value
    assert g.shape == (5, 7) and g[4, 6] == 200 and g.sum() == 200
    # OpenCV decodes BGRA: red with half alpha.
    assert r.shape == (3, 2, 4) and list(r[2, 1]) == [0, 0, 255, 128]


def test_dumps_matches_jsonable_on_plain_and_non_finite_payloads():
    import json

    plain = {"a": [1, 2.5], "b": np.arange(3), "c": np.float32(0.25), "d": "x"}
    assert json.loads(summary.dumps(plain)) == {"a": [1, 2.5], "b": [0, 1, 2], "c": 0.25, "d": "x"}
    odd = {"nan": np.array([1.0, np.nan]), "inf": float("inf"), "k": {np.int64(3): b"z"}}
    assert json.loads(summary.dumps(odd)) == {"nan": [1.0, None], "inf": None, "k": {"3": "z"}}
    with pytest.raises(TypeError, match="Cannot write object as JSON"):
        summary.dumps({"x": object()})
