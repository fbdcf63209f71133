"""Benchmark: what `model_anatomy` costs on ResNet50 against one forward pass, and what a whole
`cnnvis analyze` costs on the trained demo model against one epoch of its training.

Run: python benchmarks/anatomy.py [--sizes 224 64] [--repeats 3] [--model runs/demo/model.keras]
     [--epochs 3] [--skip-cli]

Anatomy: `keras.applications.ResNet50(weights=None)` (1000 classes, random weights, nothing
downloaded) at each size; one `model_anatomy` call (its per-model cache cleared each round,
so every call traces one image through the patched layers and analyses the graph) against
one forward pass of one image, eager (`model(x)`) and compiled (`tf.function`, after
tracing). The three are measured in alternating rounds and the ratio is the median over
rounds of adjacent calls (the machine is shared: compare ratios, not seconds).

Analyze: the demo CNN (`cnnvis demo` writes runs/demo/model.keras; pass it with --model, or the
script trains `build_demo_model` on the demo's data for --epochs epochs). One epoch is
`model.fit` of the demo's training split (1600 shapes images, batch 32) with its validation
split (400) evaluated, as in `cnnvis demo`; `analyze` runs every monitor once on the 400
validation images (in process, model already loaded), and the CLI run (`cnnvis analyze` in a
subprocess on the same images saved as .npz) adds Python and TensorFlow start-up and model
loading. The epoch and the in-process analysis alternate over --repeats rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import interleaved, load_average, machine, median_ratio  # noqa: E402


def anatomy_cost(size: int, repeats: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnnvis.model import anatomy as anatomy_module

    model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    x = tf.constant(np.random.default_rng(0).random((1, size, size, 3), np.float32))
    compiled = tf.function(lambda t: model(t, training=False))

    def fresh_anatomy():
        anatomy_module._CACHE.pop(model, None)  # time the analysis, not the cache
        return anatomy_module.model_anatomy(model)

    times = interleaved(
        {
            "anatomy": fresh_anatomy,
            "eager": lambda: model(x, training=False).numpy(),
            "compiled": lambda: compiled(x).numpy(),
        },
        repeats=repeats,
    )
    found = fresh_anatomy()
    return {
        "size": size,
        "nodes": len(found.nodes),
        "feature_map": found.feature_map,
        "anatomy_s": float(np.min(times["anatomy"])),
        "eager_s": float(np.min(times["eager"])),
        "compiled_s": float(np.min(times["compiled"])),
        "vs_eager": median_ratio(times["anatomy"], times["eager"]),
        "vs_compiled": median_ratio(times["anatomy"], times["compiled"]),
    }


def demo_data():
    from keras_cnnvis import datasets

    images, labels, names = datasets.load("shapes", n=2000, size=64, seed=0)
    n_val = max(len(names), len(images) // 5)  # as run_demo splits
    return (images[n_val:], labels[n_val:]), (images[:n_val], labels[:n_val]), list(names)


def analyze_cost(model_path: str | None, epochs: int, repeats: int, cli: bool) -> dict:
    import keras
    import numpy as np

    from keras_cnnvis.analysis import analyze
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    (x_train, y_train), (x_val, y_val), names = demo_data()
    work = tempfile.mkdtemp(prefix="cnnvis_bench_analyze_")
    if model_path is None:
        model = build_demo_model((64, 64, 3), len(names), seed=0)
        train_demo_model(model, x_train, y_train, epochs=epochs)
        model_path = os.path.join(work, "model.keras")
        model.save(model_path)
    analysed = keras.models.load_model(model_path, compile=False)
    trained = keras.models.load_model(model_path)  # a compiled copy that trains each round
    results = []
    rounds = {"n": 0}

    def one_analysis():
        rounds["n"] += 1
        logdir = os.path.join(work, f"logs{rounds['n']}")
        results.append(analyze(analysed, (x_val, y_val, names), logdir, progress=False))

    def one_epoch():
        trained.fit(
            x_train, y_train, validation_data=(x_val, y_val), epochs=1, batch_size=32, verbose=0
        )

    times = interleaved({"epoch": one_epoch, "analyze": one_analysis}, repeats=repeats)
    out = {
        "model": model_path,
        "images": len(x_val),
        "epoch_s": float(np.min(times["epoch"])),
        "analyze_s": float(np.min(times["analyze"])),
        "vs_epoch": median_ratio(times["analyze"], times["epoch"]),
        "monitors": {
            name: float(np.median([r.seconds[name] for r in results[1:] or results]))
            for name in results[-1].seconds
        },
        "failed": results[-1].failed,
        "skipped": results[-1].skipped,
    }
    if cli:
        data = os.path.join(work, "val.npz")
        np.savez(data, x=x_val, y=y_val, class_names=np.array(names))
        command = [sys.executable, "-m", "keras_cnnvis.cli", "analyze", model_path]
        command += ["--data", data, "--logdir", os.path.join(work, "cli"), "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        out["cli_s"] = time.perf_counter() - start
        out["cli_vs_epoch"] = out["cli_s"] / out["epoch_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="a trained demo model (.keras)")
    parser.add_argument("--epochs", type=int, default=3, help="training when no --model")
    parser.add_argument("--skip-cli", action="store_true", help="no CLI subprocess run")
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['usable_cores']} usable cores, load {info['load_average']:.1f}")
    print("\nmodel_anatomy on ResNet50 (random weights) against one forward pass of one image:")
    for size in args.sizes:
        r = anatomy_cost(size, args.repeats)
        print(
            f"  {size:>3} px: anatomy {r['anatomy_s']:.2f} s ({r['nodes']} calls traced, "
            f"feature map {r['feature_map']}) | eager forward {r['eager_s']:.3f} s "
            f"(x{r['vs_eager']:.1f}) | compiled forward {r['compiled_s']:.3f} s "
            f"(x{r['vs_compiled']:.1f})"
        )
    r = analyze_cost(args.model, args.epochs, args.repeats, not args.skip_cli)
    print(
        f"\ncnnvis analyze on the demo model ({r['images']} validation images, "
        f"{len(r['monitors'])} monitors) against one training epoch:"
    )
    print(
        f"  analyze() {r['analyze_s']:.1f} s | one epoch {r['epoch_s']:.1f} s | "
        f"ratio x{r['vs_epoch']:.1f}"
    )
    if "cli_s" in r:
        print(
            f"  the CLI in a subprocess (start-up, loading, analysis) {r['cli_s']:.1f} s "
            f"(x{r['cli_vs_epoch']:.1f} an epoch)"
        )
    print("  per monitor: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["monitors"].items()))
    for name, error in r["failed"].items():
        print(f"  FAILED {name}: {error}")
    for name, reason in r["skipped"].items():
        print(f"  skipped {name}: {reason}")
    print(f"load average at the end: {load_average():.1f}")


if __name__ == "__main__":
    main()
