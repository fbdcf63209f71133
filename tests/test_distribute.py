"""CNNVisCallback under tf.distribute: MirroredStrategy on 2 logical CPU devices, and
MultiWorkerMirroredStrategy with two local workers where only the chief writes. Each run is
a subprocess (tests/robustness_distribute_script.py): devices and clusters are fixed at TF
start-up.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from eventfiles import event_files, read_run
from keras_cnnvis import filter_grid, image
from robustness_models import shapes_data, tiny_cnn

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "robustness_distribute_script.py")
TIMEOUT = 240


def env_with(tf_config=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def summary_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def rendered_filters(kernel: np.ndarray) -> np.ndarray:
    """conv_a's filter grid for a given kernel, as the callback draws it (uint8 RGB)."""
    model = tiny_cnn(compile=False)
    model.get_layer("conv_a").kernel.assign(kernel)
    return image.to_uint8(filter_grid(model, "conv_a"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_strategy_on_two_cpu_devices(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, SCRIPT, "mirrored", str(tmp_path / "logs"), str(out)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env_with(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_line(done.stdout) == {"replicas": 2, "task": None}
    run_dir = str(tmp_path / "logs" / "cnnvis")
    assert len(event_files(run_dir)) == 1
    run = read_run(run_dir)
    for tag in ("filters/conv_a", "health/conv_b", "activations/conv_a", "attribution/grad_cam"):
        assert [r.step for r in run[tag]] == [0, 1, 2], tag
    assert [r.step for r in run["patches/conv_b"]] == [2]  # expensive: not untrained
    assert [r.step for r in run["localization/grad_cam/pointing_game"]] == [0, 1, 2]
    # The last records show the replicated model's final state.
    kernel = np.load(out / "conv_a.npy")
    np.testing.assert_array_equal(
        run["filters/conv_a"][-1].value[0][..., ::-1], rendered_filters(kernel)
    )
    _, (x_val, y_val, _) = shapes_data()
    predicted = np.argmax(np.load(out / "predictions.npy"), axis=1)
    matrix = np.zeros((5, 5), int)
    np.add.at(matrix, (y_val, predicted), 1)
    assert run["json/confusion/matrix"][-1].value["matrix"] == matrix.tolist()
    maps = np.array(run["json/attribution/grad_cam"][-1].value["maps"], dtype=float)
    assert maps.shape == (5, 16 * 16) and np.isfinite(maps).all() and maps.max() == 1.0


def test_multi_worker_only_the_chief_writes(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for index in (0, 1):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    SCRIPT,
                    "multiworker",
                    str(tmp_path / f"logs{index}"),
                    str(tmp_path / f"out{index}"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env_with(config),
            )
        )
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for index, (code, stdout, stderr) in enumerate(results):
        assert code == 0, f"worker {index}: {stderr[-3000:]}"
        assert summary_line(stdout) == {"replicas": 2, "task": ["worker", index]}
    # Worker 0 (the chief: the cluster has no "chief" job) wrote; worker 1 wrote nothing.
    assert len(event_files(str(tmp_path / "logs0" / "cnnvis"))) == 1
    assert not os.path.exists(tmp_path / "logs1")
    # Training was synchronous (same weights on both workers) and moved the filters.
    kernels = [np.load(tmp_path / f"out{i}" / "conv_a.npy") for i in (0, 1)]
    np.testing.assert_array_equal(kernels[0], kernels[1])
    run = read_run(str(tmp_path / "logs0" / "cnnvis"))
    assert [r.step for r in run["filters/conv_a"]] == [0, 1, 2]
    assert [r.step for r in run["patches/conv_a"]] == [2]  # expensive: not untrained
    np.testing.assert_array_equal(
        run["filters/conv_a"][-1].value[0][..., ::-1], rendered_filters(kernels[0])
    )
    assert not np.array_equal(run["filters/conv_a"][0].value[0], run["filters/conv_a"][-1].value[0])
