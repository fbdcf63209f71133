"""Shared timing helpers of the benchmark scripts: best and interleaved wall times, the
compiled floor passes, and a description of the machine and its load.

The machine is shared, so load changes from second to second: compare only ratios of runs
measured next to each other (`interleaved`, `paired`), never seconds across runs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from typing import Callable

import numpy as np


def timed(
    fn: Callable, repeats: int = 3, budget: float = 0.0, warm_up: int = 1, inner: int = 1
) -> float:
    """Best wall time of one `fn()` call: the minimum, because other processes only add time.

    Runs `fn` `warm_up` times first (tracing), then at least `repeats` timed rounds and
    until `budget` seconds were spent; each round calls `fn` `inner` times (for calls
    too short to time one by one) and counts the mean.
    """
    for _ in range(warm_up):
        fn()
    times: list[float] = []
    while len(times) < repeats or sum(times) * inner < budget:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return float(np.min(times))


def interleaved(
    fns: dict[str, Callable], repeats: int = 3, budget: float = 0.0, warm_up: bool = True
) -> dict[str, list[float]]:
    """Wall times of several functions measured in alternating rounds.

    Each round runs every function once, the order rotating from round to round, so load
    from other processes hits all of them alike; the ratio of two times of the same round
    cancels most of it. After one warm-up call each (tracing), runs at least `repeats`
    rounds and until `budget` seconds were spent. Returns the list of times per name, in
    round order.
    """
    names = list(fns)
    if warm_up:
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    spent, rounds = 0.0, 0
    while rounds < repeats or spent < budget:
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name]()
            took = time.perf_counter() - start
            times[name].append(took)
            spent += took
        rounds += 1
    return times


def median_ratio(numerator: list[float], denominator: list[float], scale: float = 1.0) -> float:
    """Median over rounds of `numerator[i] / (scale * denominator[i])`."""
    return float(np.median(np.asarray(numerator) / (scale * np.asarray(denominator))))


def paired(fn: Callable, reference: Callable, count: int, repeats: int, budget: float = 3.0):
    """Times `fn` against `count` x `reference`, alternating the two.

    Returns `(best seconds of fn, best seconds of reference, median of
    fn / (count x reference) over adjacent runs)`.
    """
    times = interleaved({"reference": reference, "fn": fn}, repeats, budget)
    return (
        float(np.min(times["fn"])),
        float(np.min(times["reference"])),
        median_ratio(times["fn"], times["reference"], count),
    )


def floors(model, x: np.ndarray, classes: np.ndarray) -> tuple[Callable, Callable]:
    """The compiled floor passes of `model` on the batch `x`: `(forward, forward_backward)`.

    `forward()` is one compiled forward pass with its output fetched to numpy;
    `forward_backward()` one compiled forward and backward pass (gradient of the score
    of `classes` with respect to the input), fetched to numpy.
    """
    import tensorflow as tf

    forward = tf.function(lambda t: model(t, training=False))

    @tf.function
    def forward_backward(t, c):
        with tf.GradientTape() as tape:
            tape.watch(t)
            score = tf.gather(model(t, training=False), c, batch_dims=1)
        return tape.gradient(score, t)

    xt, ct = tf.constant(x), tf.constant(np.asarray(classes, np.int32))
    return (
        lambda: forward(xt).numpy(),
        lambda: forward_backward(xt, ct).numpy(),
    )


def load_average() -> float:
    """The one-minute load average (0 where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """CPU model, cores, load average, and the versions of everything measured."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "load_average": load_average(),
        "python": sys.version.split()[0],
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "scikit-learn": _version("scikit-learn"),
        "tf-keras-vis": _version("tf-keras-vis"),
        "tf-explain": _version("tf-explain"),
        "keras-cnnvis": f"{_version('keras-cnnvis')} (commit {_commit()})",
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Reads VmHWM from /proc/self/status (Linux): unlike `getrusage`'s ru_maxrss, it is not
    inherited from the parent across fork + exec, so a child started by a large process
    reports its own peak. Falls back to ru_maxrss elsewhere.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
