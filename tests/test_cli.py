"""The `cnnvis` command end to end: `demo` in a subprocess, its logs read back; `board`."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import keras
import numpy as np
import pytest

from eventfiles import read_run
from keras_cnnvis.cli import build_parser, main
from keras_cnnvis.cli.board import SAMPLING, tensorboard_argv

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def cnnvis():
    """The installed console script (what the README tells users to run)."""
    path = shutil.which("cnnvis")
    assert path, "the `cnnvis` console script is not installed (pip install -e .)"
    return [path]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("demo") / "runs"
    proc = subprocess.run(
        [*cnnvis(), "demo", "--epochs", "1", "--n", "300", "--logdir", str(logdir), "--quiet"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return logdir, proc.stdout


def test_demo_writes_logs_model_and_instructions(demo_run):
    logdir, stdout = demo_run
    assert f"cnnvis board {logdir}" in stdout
    assert {"cnnvis", "train", "validation", "model.keras"} <= set(os.listdir(logdir))
    run = read_run(str(logdir / "cnnvis"))
    for conv in ("conv1", "conv2", "conv3", "conv4"):
        assert [r.step for r in run[f"filters/{conv}"]] == [0, 1]
    conv1 = run["filters/conv1"][1].value[0]
    assert conv1.shape == (4 * 31 + 1, 4 * 31 + 1, 3)  # 16 RGB 5x5 filters, x6, 4x4 grid
    model = keras.models.load_model(logdir / "model.keras")
    assert model.output_shape == (None, 5)
    assert np.allclose(
        model.predict(np.zeros((2, 64, 64, 3), np.float32), verbose=0).sum(-1), 1, atol=1e-5
    )


def test_demo_rejects_bad_arguments(capsys, tmp_path):
    assert main(["demo", "--epochs", "0", "--logdir", str(tmp_path)]) == 2
    assert "epochs must be >= 1" in capsys.readouterr().err
    assert main(["demo", "--dataset", "imagenet", "--logdir", str(tmp_path)]) == 2
    assert "imagenet" in capsys.readouterr().err


def test_board_arguments_keep_every_sample():
    args, extra = build_parser().parse_known_args(
        ["board", "runs/x", "--port", "7007", "--load_fast=false"]
    )
    args.extra = extra
    argv = tensorboard_argv(args)
    assert argv[argv.index("--samples_per_plugin") + 1] == SAMPLING
    assert "cnnvis=1000000" in SAMPLING and "images=1000000" in SAMPLING
    assert argv[-1] == "--load_fast=false" and argv[argv.index("--port") + 1] == "7007"


def test_board_refuses_a_missing_logdir(capsys, tmp_path):
    assert main(["board", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_board_serves_the_cnnvis_tab(demo_run):
    logdir, _ = demo_run
    port = _free_port()
    proc = subprocess.Popen(
        [*cnnvis(), "board", str(logdir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    try:
        deadline = time.time() + 90
        listing = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/data/plugins_listing", timeout=5
                ) as r:
                    listing = json.load(r)
                break
            except OSError:
                time.sleep(1)
        assert listing is not None, "TensorBoard did not start within 90 s"
        assert "cnnvis" in listing
    finally:
        proc.kill()
        proc.wait(timeout=30)
