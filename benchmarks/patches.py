"""Benchmark: max-activating patch mining vs a plain compiled forward pass of the truncated
model (throughput ratio), and peak memory when mining 10k vs 50k streamed images.

Run: python benchmarks/patches.py [--n 4096] [--batch 64] [--layers conv1 conv4]
     [--memory 10000 50000] [--repeats 3]

Throughput: both sides see the same numpy batches of the demo CNN's 64x64 shapes images;
the reference is `keras.Model(model.inputs, layer.output)` inside a `tf.function` with its
output fetched to numpy; mining keeps the top-9 of every channel with patches, measured with
a `PatchMiner` built once (steady state, as in the callback) and as one-shot
`max_activating_patches` calls (which also trace the receptive field and compile). The
steady-state comparison alternates plain and mining batch by batch (so load from other
processes hits both alike) and keeps the best of `--repeats` passes; the load average is
printed alongside.

Memory: each size runs in a fresh subprocess mining `conv4` (all 64 channels, k=9) over a
generator that makes every batch on the fly (so the dataset itself never sits in memory).
Reported: the tracemalloc peak (Python + numpy allocations, during mining only) and the
process's peak resident set size (VmHWM from /proc/self/status; includes TensorFlow; unlike
ru_maxrss it is not inherited from the parent process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _setup(n_pool: int):
    import keras

    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model

    images, _, _ = datasets.shapes(n_pool, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    keras.utils.set_random_seed(0)
    return model, images


def throughput(n: int, batch: int, layers: list[str], repeats: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnnvis.patches import PatchMiner, max_activating_patches

    model, images = _setup(n)
    results = {}
    for layer in layers:
        truncated = keras.Model(model.inputs, model.get_layer(layer).output)
        plain = tf.function(
            lambda x: truncated(x, training=False),
            input_signature=[tf.TensorSpec((None, 64, 64, 3), tf.float32)],
        )

        miner = PatchMiner(model, layer, k=9)  # built once, as in the callback
        batches = [images[s : s + batch] for s in range(0, n, batch)]
        plain(tf.constant(batches[0])).numpy()  # trace / warm up
        miner.update(batches[0])
        # Interleave per batch (alternating which goes first) so that load from other
        # processes hits both sides alike; best of `repeats` passes over the data.
        best = {"plain": np.inf, "miner": np.inf}
        for _ in range(repeats):
            spent = {"plain": 0.0, "miner": 0.0}
            miner.reset()
            for i, b in enumerate(batches):
                for name in ("plain", "miner") if i % 2 == 0 else ("miner", "plain"):
                    t0 = time.perf_counter()
                    if name == "plain":
                        plain(tf.constant(b)).numpy()
                    else:
                        miner.update(b)
                    spent[name] += time.perf_counter() - t0
            t0 = time.perf_counter()
            miner.results()
            spent["miner"] += time.perf_counter() - t0
            best = {k: min(best[k], spent[k]) for k in best}
        t_call = np.inf
        for _ in range(repeats):  # one-shot call: also traces the receptive field, compiles
            t0 = time.perf_counter()
            max_activating_patches(model, layer, images, k=9, batch_size=batch)
            t_call = min(t_call, time.perf_counter() - t0)
        ips = {"plain": n / best["plain"], "miner": n / best["miner"], "call": n / t_call}
        results[layer] = {
            "plain_images_per_s": round(ips["plain"], 1),
            "mining_images_per_s": round(ips["miner"], 1),
            "call_images_per_s": round(ips["call"], 1),
            "ratio": round(ips["miner"] / ips["plain"], 3),
            "call_ratio": round(ips["call"] / ips["plain"], 3),
        }
    return results


def stream(pool, n: int, batch: int, seed: int = 0):
    """`n` images in batches, each made on the fly: a pool image plus a little noise (so
    the dataset itself never sits in memory)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    made = 0
    while made < n:
        m = min(batch, n - made)
        idx = rng.integers(0, len(pool), m)
        noise = rng.normal(0.0, 0.02, (m,) + pool.shape[1:]).astype(np.float32)
        yield np.clip(pool[idx] + noise, 0.0, 1.0)
        made += m


def memory_child(n: int, batch: int) -> dict:
    import tracemalloc

    from _timing import peak_rss_mb
    from keras_cnnvis.patches import max_activating_patches

    model, pool = _setup(1000)
    max_activating_patches(model, "conv4", pool[:batch], k=9, batch_size=batch)  # warm up
    tracemalloc.start()
    t0 = time.perf_counter()
    top = max_activating_patches(model, "conv4", stream(pool, n, batch), k=9, batch_size=batch)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert top.n_images == n
    return {
        "n_images": n,
        "seconds": round(seconds, 1),
        "tracemalloc_peak_mb": round(peak / 2**20, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--layers", nargs="+", default=["conv1", "conv2", "conv4"])
    parser.add_argument("--memory", nargs="*", type=int, default=[10000, 50000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(memory_child(args.child, args.batch)))
        return

    print(
        f"Throughput, demo CNN, {args.n} images 64x64, batch {args.batch}, best of "
        f"{args.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:"
    )
    for layer, r in throughput(args.n, args.batch, args.layers, args.repeats).items():
        print(
            f"  {layer}: plain truncated forward {r['plain_images_per_s']:.0f} img/s; patch "
            f"mining (all channels, k=9) {r['mining_images_per_s']:.0f} img/s, ratio "
            f"{r['ratio']:.2f} (PatchMiner reused); one-shot max_activating_patches "
            f"{r['call_images_per_s']:.0f} img/s, ratio {r['call_ratio']:.2f}"
        )
    runs = []
    for n in args.memory:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--batch", str(args.batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if runs:
        print("Peak memory mining conv4 over a streamed generator (fresh process each):")
        for r in runs:
            print(
                f"  {r['n_images']:>6} images: {r['seconds']:.1f} s, tracemalloc peak "
                f"{r['tracemalloc_peak_mb']:.2f} MB, peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        if len(runs) > 1:
            a, b = runs[0], runs[-1]
            print(
                f"  {b['n_images']} vs {a['n_images']} images: tracemalloc peak x"
                f"{b['tracemalloc_peak_mb'] / a['tracemalloc_peak_mb']:.2f}, peak RSS x"
                f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}"
            )


if __name__ == "__main__":
    main()
