"""Benchmark: the cost of corrupting a batch against one compiled forward pass of the demo
model on that batch (the goal: every corruption cheaper than the pass, ratio < 1).

Run: python benchmarks/corruptions.py [--batch 64] [--size 64] [--severities 1 2 3 4 5]
     [--repeats 3] [--only gaussian_noise fog] [--json PATH]

The batch is `--batch` shapes images of `--size` px; the floor is the demo CNN's forward
pass on it inside a `tf.function` with its output fetched to numpy (`_timing.floors`).
Each corruption and severity is timed against the floor in alternating rounds
(`_timing.interleaved`), so load from other processes hits both alike; the ratio is the
median over rounds of corruption time / forward time. Printed per corruption: the best
time and the ratio at the slowest severity, and the mean ratio over the severities.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import floors, interleaved, machine, median_ratio  # noqa: E402


def measure(batch: int, size: int, severities, repeats: int, only=None) -> dict:
    import numpy as np

    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.robustness import CORRUPTIONS, corrupt

    images, labels, _ = datasets.shapes(batch, size=size, seed=0)
    model = build_demo_model((size, size, 3), len(datasets.SHAPE_CLASSES), seed=0)
    forward, _ = floors(model, images, labels)
    rows = {}
    for name in only or CORRUPTIONS:
        per_severity = {}
        for severity in severities:
            times = interleaved(
                {"forward": forward, "corrupt": lambda: corrupt(images, name, severity)},
                repeats=repeats,
                budget=0.3,
            )
            per_severity[severity] = {
                "corrupt_s": float(np.min(times["corrupt"])),
                "forward_s": float(np.min(times["forward"])),
                "ratio": median_ratio(times["corrupt"], times["forward"]),
            }
        worst = max(per_severity, key=lambda s: per_severity[s]["ratio"])
        rows[name] = {
            "severities": per_severity,
            "worst_severity": worst,
            "worst_ratio": per_severity[worst]["ratio"],
            "worst_corrupt_s": per_severity[worst]["corrupt_s"],
            "mean_ratio": float(np.mean([v["ratio"] for v in per_severity.values()])),
        }
    return rows


def report(rows: dict, batch: int, size: int) -> str:
    forward = min(v["forward_s"] for r in rows.values() for v in r["severities"].values())
    lines = [
        f"Corrupting {batch} images of {size}x{size} vs one forward pass of the demo CNN "
        f"(best {forward * 1e3:.1f} ms); ratio = corruption / forward (goal < 1)",
        "",
        f"{'corruption':18s} {'worst ms':>9s} {'at sev':>6s} {'worst ratio':>11s} "
        f"{'mean ratio':>10s}  goal",
    ]
    for name, r in rows.items():
        ok = "met" if r["worst_ratio"] < 1 else ("mean met" if r["mean_ratio"] < 1 else "missed")
        lines.append(
            f"{name:18s} {r['worst_corrupt_s'] * 1e3:9.1f} {r['worst_severity']:6d} "
            f"{r['worst_ratio']:11.2f} {r['mean_ratio']:10.2f}  {ok}"
        )
    met = sum(r["worst_ratio"] < 1 for r in rows.values())
    lines += ["", f"{met}/{len(rows)} corruptions cheaper than the forward pass at every severity"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    info = machine()
    rows = measure(args.batch, args.size, args.severities, args.repeats, args.only)
    print(
        f"{info['cpu']} ({info['usable_cores']} usable cores), load average "
        f"{info['load_average']:.2f}; numpy {info['numpy']}, tensorflow {info['tensorflow']}"
    )
    print(report(rows, args.batch, args.size))
    result = {"machine": info, "batch": args.batch, "size": args.size, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
