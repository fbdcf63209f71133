"""The examples run end to end (small settings, no downloads) and write what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from eventfiles import read_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name: str, *args: str, cwd: str) -> str:
    """Runs `examples/<name>.py` with `args` in a fresh Python; returns what it printed."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", f"{name}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_quickstart_logs_every_monitor(tmp_path):
    code = (
        "import runpy, sys; sys.argv = ['quickstart']; "
        f"mod = runpy.run_path({os.path.join(ROOT, 'examples', 'quickstart.py')!r}); "
        f"mod['main']({str(tmp_path / 'runs')!r}, epochs=1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "cnnvis board" in done.stdout
    run = read_run(str(tmp_path / "runs" / "cnnvis"))
    # budget=None: every monitor's final record; the cheap ones' initial record too.
    for tag in ("json/confusion/matrix", "json/attribution/grad_cam"):
        assert [r.step for r in run[tag]] == [0, 1], tag
    for tag in ("json/attribution/occlusion", "json/embedding/pca"):
        assert [r.step for r in run[tag]] == [1], tag


def test_transfer_learning_sees_inside_the_nested_base(tmp_path):
    out = run_example(
        "transfer_learning",
        "--weights",
        "none",
        "--epochs",
        "1",
        "--n",
        "160",
        "--logdir",
        "runs",
        cwd=tmp_path,
    )
    assert "layers watched by keras-cnnvis: ['mobilenetv2" in out
    assert "Grad-CAM layer (the feature map): mobilenetv2_0.35_96/out_relu" in out
    run = read_run(str(tmp_path / "runs" / "cnnvis"))
    filters = [t for t in run if t.startswith("filters/")]
    assert filters and all("/" in t[len("filters/") :] for t in filters)  # nested paths


def test_embedding_shapes_writes_projector_files(tmp_path):
    run_example(
        "embedding_shapes",
        "--epochs",
        "1",
        "--n",
        "300",
        "--n-val",
        "100",
        "--logdir",
        "runs",
        cwd=tmp_path,
    )
    run = read_run(str(tmp_path / "runs" / "cnnvis"))
    assert len(run["json/embedding/pca"][-1].value["points"]) == 100
    assert os.path.isfile(tmp_path / "runs" / "cnnvis" / "projector_config.pbtxt")


def test_deep_dream_and_style_transfer_write_pictures(tmp_path):
    import cv2

    from keras_cnnvis.demo import build_demo_model

    path = str(tmp_path / "demo.keras")
    build_demo_model((64, 64, 3), 5).save(path)
    run_example(
        "deep_dream",
        "--model",
        path,
        "--size",
        "64",
        "--steps",
        "2",
        "--out",
        "dream.png",
        cwd=tmp_path,
    )
    run_example(
        "style_transfer",
        "--weights",
        "none",
        "--size",
        "48",
        "--steps",
        "2",
        "--out",
        "style.png",
        cwd=tmp_path,
    )
    for name in ("dream.png", "style.png"):
        picture = cv2.imread(str(tmp_path / name))
        assert picture is not None and picture.ndim == 3 and np.ptp(picture) > 0
