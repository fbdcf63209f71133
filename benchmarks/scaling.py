"""Benchmark: time and peak memory of patch mining and of embeddings at 1k, 10k and 50k images,
each size in a fresh process (linear time and flat memory are the targets for mining).

Run: python benchmarks/scaling.py [--sizes 1000 10000 50000] [--batch 64]

Both stream the images batch by batch from a generator (`patches.stream`: a pool image
plus noise, made on the fly) through the untrained demo CNN (64x64), so the data set never
sits in memory. Mining: `patches.memory_child` (`max_activating_patches` on conv4, all 64
channels, k=9). Embeddings: one compiled `LayerFeatures` (input of the last Dense layer and
the model outputs, as `EmbeddingCallback` reads them) over every batch, then PCA and t-SNE
with `project` (both capped at 1000 points, the default). Peak memory: the tracemalloc peak
(Python and numpy allocations during the work) and the process's peak resident set size
(VmHWM, includes TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))


def embedding_child(n: int, batch: int) -> dict:
    """Features of `n` streamed images, then PCA and t-SNE (capped); seconds and memory."""
    import tracemalloc

    import numpy as np

    from _timing import peak_rss_mb
    from keras_cnnvis.embeddings import LayerFeatures, project
    from patches import _setup, stream

    model, pool = _setup(1000)
    source = LayerFeatures(model, batch_size=batch)
    source(pool[:batch], outputs=True)  # warm up (tracing)
    tracemalloc.start()
    t0 = time.perf_counter()
    feats = np.concatenate([source(b, outputs=True)[0] for b in stream(pool, n, batch)])
    t1 = time.perf_counter()
    project(feats, "pca")
    t2 = time.perf_counter()
    project(feats, "tsne")
    t3 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(feats) == n
    return {
        "n_images": n,
        "seconds": round(t3 - t0, 2),
        "features_s": round(t1 - t0, 2),
        "pca_s": round(t2 - t1, 2),
        "tsne_s": round(t3 - t2, 2),
        "tracemalloc_peak_mb": round(peak / 2**20, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable] + args, capture_output=True, text=True, check=True, cwd=HERE
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling(sizes=(1000, 10000, 50000), batch: int = 64, log=print) -> dict:
    """Runs mining and embeddings at each size, each in a fresh process; returns the rows."""
    from _timing import load_average

    rows: dict[str, list[dict]] = {"mining": [], "embeddings": []}
    for n in sizes:
        for what, args in (
            ("mining", [os.path.join(HERE, "patches.py"), "--child", str(n)]),
            ("embeddings", [os.path.join(HERE, "scaling.py"), "--child-embedding", str(n)]),
        ):
            row = _child(args + ["--batch", str(batch)])
            row["load"] = load_average()
            rows[what].append(row)
            log(f"  {what:<10} {n:>6} images: {row['seconds']:7.1f} s (load {row['load']:.1f})")
    return rows


def report(rows: dict, log=print) -> list[str]:
    """Prints the scaling table; returns it as markdown lines (table, then the ratios)."""
    lines = [
        "| work | images | seconds | ms / image | tracemalloc peak MB | peak RSS MB | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    log(f"{'work':<34}{'images':>7}{'s':>8}{'ms/img':>8}{'peak MB':>9}{'RSS MB':>8}{'load':>6}")
    for what, label in (
        ("mining", "patch mining (conv4, 64 ch, k=9)"),
        ("embeddings", "embeddings (features, PCA, t-SNE)"),
    ):
        for r in rows[what]:
            extra = ""
            if what == "embeddings":
                extra = (
                    f" (features {r['features_s']:.1f} s, PCA {r['pca_s']:.2f} s, t-SNE "
                    f"{r['tsne_s']:.1f} s)"
                )
            per = 1000 * r["seconds"] / r["n_images"]
            log(
                f"{label:<34}{r['n_images']:>7}{r['seconds']:>8.1f}{per:>8.2f}"
                f"{r['tracemalloc_peak_mb']:>9.1f}{r['peak_rss_mb']:>8.0f}{r['load']:>6.1f}{extra}"
            )
            lines.append(
                f"| {label}{extra} | {r['n_images']} | {r['seconds']:.1f} | {per:.2f} | "
                f"{r['tracemalloc_peak_mb']:.1f} | {r['peak_rss_mb']:.0f} | {r['load']:.1f} |"
            )
        for a, b in zip(rows[what], rows[what][1:]):
            summary = (
                f"{label}, {a['n_images']} -> {b['n_images']} images "
                f"({b['n_images'] / a['n_images']:.0f}x): time x{b['seconds'] / a['seconds']:.1f}, "
                f"tracemalloc peak x{b['tracemalloc_peak_mb'] / a['tracemalloc_peak_mb']:.2f}, "
                f"peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}"
            )
            log("  " + summary)
            notes.append(f"- {summary}.")
    return lines + [""] + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 50000])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--child-embedding", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_embedding:
        print(json.dumps(embedding_child(args.child_embedding, args.batch)))
        return
    report(scaling(args.sizes, args.batch))


if __name__ == "__main__":
    main()
