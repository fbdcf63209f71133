"""Benchmark: what `CNNVisCallback` adds to `model.fit` on the demo setup (`cnnvis demo`), at
its defaults (time budget 10%) and without a budget (every monitor on its schedule), with a
per-monitor breakdown.

Run: python benchmarks/overhead.py [--epochs 8] [--rounds 3] [--no-unlimited]

Setup as `cnnvis demo`: `datasets.load("shapes", n=2000, size=64, seed=0)`, 400 validation /
1600 training images, `build_demo_model(seed=0)` built fresh (same weights) for every fit,
batch 32, `--epochs` epochs, validation data passed to `fit`. The fits are interleaved:
without, with (defaults), with (budget=None), without, ... for `--rounds` rounds, so load
from other processes hits all of them alike. Two measures of the overhead: the median over
rounds of `fit with / fit without - 1` (noisy on a shared machine), and the in-fit share:
the callback's own time (its `log()` calls and `on_train_begin`; it runs synchronously in
the epoch hooks) over the rest of the same fit. Per monitor, `log_seconds` (the wall time
of every `log()` call) gives the first call (tracing, fresh t-SNE), the steady calls and
the total; from these the report predicts the epoch length at which the default schedule
meets the target (<= 15%).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from _timing import load_average  # noqa: E402

EXPENSIVE = ("saliency", "occlusion", "patches", "embedding", "neighbors", "classes")

UNLIMITED = {"budget": None}
"""No time budget: cheap monitors before training and after every epoch, expensive ones
before training, every 5 epochs and at the end, whatever it costs."""

UNLIMITED_TEXT = (
    "budget=None: cheap monitors before training and every epoch, expensive ones before "
    "training, every 5 epochs and at the end"
)


def demo_data() -> dict:
    """The data of `cnnvis demo`: 1600 training and 400 validation shapes, with masks."""
    from keras_cnnvis import datasets

    images, labels, class_names = datasets.load("shapes", n=2000, size=64, seed=0)
    n_val = max(len(class_names), len(images) // 5)
    _, _, masks = datasets.shapes(2000, size=64, seed=0)
    return {
        "x_train": images[n_val:],
        "y_train": labels[n_val:],
        "x_val": images[:n_val],
        "y_val": labels[:n_val],
        "masks": masks[:n_val],
        "class_names": list(class_names),
    }


def fit_once(data: dict, epochs: int, settings: dict | None) -> tuple[float, object, float]:
    """Seconds of one demo fit; with `settings` (CNNVisCallback keyword arguments) attached.

    Returns `(fit seconds, the callback or None, seconds spent in on_train_begin)`.
    """
    from keras_cnnvis.callbacks import CNNVisCallback
    from keras_cnnvis.demo import build_demo_model

    model = build_demo_model((64, 64, 3), len(data["class_names"]), seed=0)
    callback, log_dir, setup = None, None, [0.0]
    callbacks = []
    if settings is not None:
        log_dir = tempfile.mkdtemp(prefix="cnnvis_overhead_")
        callback = CNNVisCallback(
            log_dir,
            validation_data=(data["x_val"], data["y_val"]),
            masks=data["masks"],
            class_names=data["class_names"],
            **settings,
        )
        begin = callback.on_train_begin

        def timed_begin(logs=None):
            start = time.perf_counter()
            begin(logs)
            setup[0] = time.perf_counter() - start

        callback.on_train_begin = timed_begin
        callbacks.append(callback)
    start = time.perf_counter()
    model.fit(
        data["x_train"],
        data["y_train"],
        validation_data=(data["x_val"], data["y_val"]),
        epochs=epochs,
        batch_size=32,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    if log_dir is not None:
        shutil.rmtree(log_dir, ignore_errors=True)
    return seconds, callback, setup[0]


def breakdown(callback) -> dict:
    """Per monitor: calls, first call, median steady call and total seconds of `log()`, and
    the records the time budget skipped."""
    out = {}
    for name, monitor in zip(callback.names, callback.monitors):
        s = list(monitor.log_seconds)
        out[name] = {
            "calls": len(s),
            "first": s[0] if s else 0.0,
            "steady": float(np.median(s[1:])) if len(s) > 1 else 0.0,
            "total": float(np.sum(s)),
            "failed": bool(monitor.disabled),
            "skipped": int(callback.skipped.get(name, 0)),
        }
    return out


def overhead(epochs: int = 8, rounds: int = 3, unlimited: bool = True, log=print) -> dict:
    """Interleaved demo fits without and with `CNNVisCallback`; prints progress, returns
    the figures.

    Returns a dict with `without` (fit seconds per round) and per variant (`defaults`,
    `unlimited`): `seconds` (fit seconds per round), `overhead` (median over rounds of
    with / without - 1), `share` (median over rounds of the callback's own time, its
    `log()` calls plus `on_train_begin`, over the rest of the same fit), `setup` (median
    seconds in `on_train_begin`) and `monitors` (`breakdown` of the last round, totals as
    medians over rounds); and `loads`, the load averages seen.
    """
    data = demo_data()
    variants: dict[str, dict | None] = {"without": None, "defaults": {}}
    if unlimited:
        variants["unlimited"] = UNLIMITED
    times = {name: [] for name in variants}
    setups = {name: [] for name in variants}
    shares = {name: [] for name in variants}
    monitors: dict[str, list[dict]] = {name: [] for name in variants}
    loads = [load_average()]
    fit_once(data, 1, None)  # warm up TensorFlow (first-fit costs, thread pools)
    for r in range(rounds):
        for name, settings in variants.items():
            with warnings.catch_warnings():  # the budget's note on skipped records
                warnings.simplefilter("ignore", UserWarning)
                seconds, callback, setup = fit_once(data, epochs, settings)
            times[name].append(seconds)
            setups[name].append(setup)
            if callback is not None:
                per = breakdown(callback)
                monitors[name].append(per)
                own = setup + sum(m["total"] for m in per.values())
                shares[name].append(own / (seconds - own))
            loads.append(load_average())
            log(f"  round {r + 1}: {name:<12} {seconds:7.1f} s   (load {loads[-1]:.1f})")
    result = {"epochs": epochs, "rounds": rounds, "without": times["without"], "loads": loads}
    for name in variants:
        if name == "without":
            continue
        ratio = np.asarray(times[name]) / np.asarray(times["without"])
        per = monitors[name][-1]
        for key in per:
            per[key]["total"] = float(np.median([m[key]["total"] for m in monitors[name]]))
        result[name] = {
            "seconds": times[name],
            "overhead": float(np.median(ratio - 1.0)),
            "share": float(np.median(shares[name])),
            "setup": float(np.median(setups[name])),
            "monitors": per,
        }
    return result


def predicted_cost(monitors: dict, setup: float, epochs: int, expensive_every: int = 5) -> float:
    """Seconds the full schedule (no budget) spends over `epochs` epochs, from call costs:
    cheap monitors log before training and after every epoch, expensive ones before
    training, every `expensive_every` epochs and at the end."""
    cost = setup
    for name, m in monitors.items():
        if name in EXPENSIVE:
            calls = 1 + epochs // expensive_every + (1 if epochs % expensive_every else 0)
        else:
            calls = 1 + epochs
        cost += m["first"] + (calls - 1) * m["steady"]
    return cost


def report(result: dict, log=print) -> None:
    """Prints the overhead of each variant, the per-monitor breakdown, and the epoch length
    at which the default schedule would meet the 15% target."""
    base = float(np.median(result["without"]))
    epoch = base / result["epochs"]
    log(
        f"demo fit ({result['epochs']} epochs, 1600 images, batch 32, validation 400) without "
        f"the callback: median {base:.1f} s ({epoch:.2f} s per epoch); load average "
        f"{min(result['loads']):.1f}-{max(result['loads']):.1f} on {os.cpu_count()} CPUs"
    )
    log(
        "overhead = median over rounds of (fit with / fit without - 1); in-fit share = the "
        "callback's own time (log() calls + on_train_begin) / the rest of the same fit"
    )
    for name in ("defaults", "unlimited"):
        if name not in result:
            continue
        r = result[name]
        flag = "met" if max(r["overhead"], r["share"]) <= 0.15 else "MISSED"
        label = "CNNVisCallback defaults (budget 0.1)" if name == "defaults" else "no budget"
        log(
            f"\n{label}: fit median {np.median(r['seconds']):.1f} s, overhead "
            f"{100 * r['overhead']:.0f}%, in-fit share {100 * r['share']:.0f}% "
            f"(target <= 15%: {flag})"
        )
        if name == "unlimited":
            log(f"  ({UNLIMITED_TEXT})")
        log(
            f"  {'monitor':<12}{'calls':>6}{'skipped':>8}{'first s':>9}{'steady s':>10}"
            f"{'total s':>9}{'% of fit':>10}"
        )
        total = 0.0
        rows = sorted(r["monitors"].items(), key=lambda kv: -kv[1]["total"])
        for monitor, m in rows:
            total += m["total"]
            note = "  (failed, switched off)" if m["failed"] else ""
            log(
                f"  {monitor:<12}{m['calls']:>6}{m['skipped']:>8}{m['first']:>9.2f}"
                f"{m['steady']:>10.2f}"
                f"{m['total']:>9.2f}{100 * m['total'] / base:>9.1f}%{note}"
            )
        log(
            f"  {'all log()':<12}{'':>33}{total:>9.2f}{100 * total / base:>9.1f}%\n"
            f"  on_train_begin (builds and validates the monitors): {r['setup']:.2f} s"
        )
    if "unlimited" in result:
        d = result["unlimited"]
        log("\nFull schedule (no budget), predicted from these call costs (same model, data):")
        for epochs in (8, 20, 50):
            cost = predicted_cost(d["monitors"], d["setup"], epochs)
            need = cost / (0.15 * epochs)
            log(
                f"  {epochs:>3} epochs: callback {cost:6.1f} s = {100 * cost / (epochs * epoch):4.0f}% "
                f"of {epochs} demo epochs; <= 15% once an epoch takes >= {need:.1f} s "
                f"(~{int(round(1600 * need / epoch, -2)):,} training images per epoch)"
            )
        epochs = result["epochs"]
        cost = predicted_cost(d["monitors"], d["setup"], epochs, expensive_every=2)
        log(
            f"  `cnnvis demo` itself uses expensive_every=2: {cost:.1f} s = "
            f"{100 * cost / (epochs * epoch):.0f}% of {epochs} demo epochs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-unlimited", action="store_true")
    args = parser.parse_args()
    result = overhead(args.epochs, args.rounds, not args.no_unlimited)
    report(result)


if __name__ == "__main__":
    main()
