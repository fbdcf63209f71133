"""Benchmark: the cost of corrupting a batch against one compiled forward pass of the demo
model on that batch (the goal: every corruption cheaper than the pass, ratio < 1).

Run: python benchmarks/corruptions.py [--batch 64] [--size 64] [--severities 1 2 3 4 5]
     [--repeats 3] [--only gaussian_noise fog] [--json PATH] [--monitor] [--all]

The batch is `--batch` shapes images of `--size` px; the floor is the demo CNN's forward
pass on it inside a `tf.function` with its output fetched to numpy (`_timing.floors`).
Each corruption and severity is timed against the floor in alternating rounds
(`_timing.interleaved`), so load from other processes hits both alike; the ratio is the
median over rounds of corruption time / forward time. Printed per corruption: the best
time and the ratio at the slowest severity, and the mean ratio over the severities.

`--monitor` measures `RobustnessCallback` instead: the seconds of one record on the demo CNN
(trained for one epoch on 1600 shapes images, as `cnnvis demo` does) at its defaults (200
validation images, 5 corruptions x 3 severities, PGD at 2/255 and 8/255 on 64 images with 5
steps, 4 probes), split into the corruption table, the attack and the rest (heatmap, examples,
writing), against one training epoch of the demo (1600 images, batch 32). `--all` measures
the 19 x 5 table instead of the default 5 x 3.
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


def measure_monitor(corruptions="default", every_severity: bool = False, records: int = 3) -> dict:
    """Seconds per `RobustnessCallback` record on the demo CNN, split into its parts, and
    the ratio to a demo training epoch measured in alternating rounds."""
    import tempfile
    import time

    import numpy as np

    from keras_cnnvis import datasets
    from keras_cnnvis.callbacks.robustness import DEFAULT_CORRUPTIONS, RobustnessCallback
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    x, y, _ = datasets.shapes(2000, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    train_demo_model(model, x[400:], y[400:], epochs=1)
    names = DEFAULT_CORRUPTIONS if corruptions == "default" else corruptions
    severities = (1, 2, 3, 4, 5) if every_severity else (1, 3, 5)
    with tempfile.TemporaryDirectory() as logdir:
        cb = RobustnessCallback(
            logdir, (x[:400], y[:400]), corruptions=names, severities=severities, on_error="raise"
        )
        cb.set_model(model)
        cb.on_train_begin()
        start = time.perf_counter()
        cb.log(0)()  # the record's model part, then its rendering and writing
        first = time.perf_counter() - start
        parts = []

        def record():
            cb.log(len(parts) + 1)()
            parts.append(dict(cb.seconds))

        times = interleaved(
            {
                "epoch": lambda: train_demo_model(model, x[400:], y[400:], epochs=1),
                "record": record,
            },
            repeats=records,
            warm_up=False,
        )
        cb.on_train_end()
    record_s = float(np.median(times["record"]))
    table = float(np.median([p["corruptions"] for p in parts]))
    attack = float(np.median([p["attack"] for p in parts]))
    return {
        "corruptions": len(cb.corruptions),
        "severities": len(cb.severities),
        "examples": len(cb.x),
        "first_record_s": first,
        "record_s": record_s,
        "table_s": table,
        "attack_s": attack,
        "rest_s": max(record_s - table - attack, 0.0),
        "epoch_s": float(np.median(times["epoch"])),
        "ratio_to_epoch": median_ratio(times["record"], times["epoch"]),
    }


def report_monitor(r: dict) -> str:
    return "\n".join(
        [
            f"RobustnessCallback on the demo CNN: {r['examples']} images, {r['corruptions']} "
            f"corruptions x {r['severities']} severities, PGD on 64 images",
            f"  first record (traces the forward pass and the attack) {r['first_record_s']:.2f} s",
            f"  one record {r['record_s']:.2f} s (median) = corruption table {r['table_s']:.2f} s"
            f" + PGD {r['attack_s']:.2f} s + heatmap, examples and writing {r['rest_s']:.2f} s",
            f"  one demo training epoch (1600 images) {r['epoch_s']:.2f} s; a record costs "
            f"{r['ratio_to_epoch']:.2f} epochs (median ratio over alternating rounds)",
        ]
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--monitor", action="store_true", help="RobustnessCallback's cost")
    parser.add_argument("--all", action="store_true", help="with --monitor: all 19 corruptions")
    args = parser.parse_args(argv)
    info = machine()
    if args.monitor:
        from keras_cnnvis.robustness import CORRUPTIONS

        r = measure_monitor(CORRUPTIONS if args.all else "default", args.all)
        print(
            f"{info['cpu']} ({info['usable_cores']} usable cores), load {info['load_average']:.2f}"
        )
        print(report_monitor(r))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": info, "monitor": r}, f, indent=2)
        return r
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
