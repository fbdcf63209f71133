"""Benchmark: what the Network page costs: record size per logged epoch, logging time, and how
fast the page opens in a real TensorBoard and headless Chromium.

Run: python benchmarks/network.py [--repeats 3] [--skip-browser] [--screenshots DIR]

Records: the demo CNN (64x64 shapes, 2 probes: every value of every layer, "full") and
ResNet50 at 224x224 (random weights, 2 probes of 224-pixel shapes images: the 8 most active
channels per layer and their peak units, "units"). Size per epoch = the bytes one logged step
adds to the event file, split into the thumbnail atlases, the probe images, the overview and
the per-layer records. Time: one `write_network` call (trace, selection, breakdowns, PNG and
JSON, writing) next to one compiled forward pass of the same probes, interleaved (the ratio of
the same round cancels most of the load of a shared machine).

Page: both runs in one log directory with two logged epochs each, served by a `tensorboard`
subprocess, driven by Chromium (playwright). Seconds from setting the page's URL hash to the
page being ready (overview JSON, atlas coloured, columns and edges drawn), to an opened
convolution unit, and to the next epoch drawn; for ResNet50 in the folded (blocks) view and
with every layer a column. "longest task" is the longest main-thread block the browser
reported while the page opened (PerformanceObserver "longtask": what a user feels as a
freeze; none above 50 ms gives 0).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import tensorflow as tf  # noqa: E402

from _timing import interleaved, load_average, median_ratio  # noqa: E402
from keras_cnnvis import datasets  # noqa: E402
from keras_cnnvis.callbacks.network import write_network  # noqa: E402
from keras_cnnvis.demo import build_demo_model  # noqa: E402
from keras_cnnvis.network import NetworkTracer  # noqa: E402
from keras_cnnvis.rendering.image import encode_png  # noqa: E402
from keras_cnnvis.summary import LogWriter, dumps  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def models() -> dict:
    import keras

    demo = build_demo_model((64, 64, 3))
    resnet = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    return {
        "demo": (demo, datasets.shapes(2, size=64, seed=1)[0]),
        "resnet50": (resnet, datasets.shapes(2, size=224, seed=1)[0]),
    }


def event_bytes(run_dir: str) -> int:
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(run_dir, "*tfevents*")))


def records(name: str, model, probes: np.ndarray, logdir: str, repeats: int) -> dict:
    """Bytes per logged step (and their split) and seconds per log vs one forward pass."""
    run_dir = os.path.join(logdir, name, "cnnvis")
    writer = LogWriter(run_dir)
    tracer = NetworkTracer(model)
    start = time.perf_counter()
    overview = write_network(writer, tracer, probes, 0)
    first = time.perf_counter() - start
    writer.flush()
    before = event_bytes(run_dir)
    write_network(writer, tracer, probes, 1)
    writer.flush()
    per_step = event_bytes(run_dir) - before
    writer.close()
    # The split, from the same payloads encoded again.
    from keras_cnnvis.network.records import layer_payload, network_snapshot
    from keras_cnnvis.rendering.network import network_atlas

    snap = network_snapshot(tracer, probes)
    maps = [
        (
            np.stack([t[k].output[..., snap.shown[r.path]] for t in snap.traces])
            if r.output.ndim == 3
            else None
        )
        for k, r in enumerate(snap.records)
    ]
    atlases = network_atlas(maps)[0]
    split = {
        "atlas PNGs": sum(len(encode_png(a[..., 0])) for a in atlases),
        "overview JSON": len(dumps(overview)),
        "layer records": sum(len(dumps(layer_payload(snap, k))) for k in range(len(snap.records))),
    }
    x = tf.convert_to_tensor(probes)
    forward = tf.function(lambda v: model(v, training=False))
    scratch = LogWriter(os.path.join(logdir, "_scratch", name))
    times = interleaved(
        {
            "log": lambda: write_network(scratch, tracer, probes, 0),
            "forward": lambda: np.asarray(forward(x)),
        },
        repeats=repeats,
    )
    scratch.close()
    return {
        "name": name,
        "mode": overview["mode"],
        "layers": len(overview["layers"]),
        "bytes": per_step,
        "split": split,
        "first_log": first,
        "log": float(np.min(times["log"])),
        "forward": float(np.min(times["forward"])),
        "ratio": median_ratio(times["log"], times["forward"]),
    }


def browser(logdir: str, shots: str | None) -> list:
    """Seconds to open the page, open a unit and draw another epoch, per run and view."""
    import plugin_fixtures as pf
    from playwright.sync_api import sync_playwright

    cases = [
        ("demo", "demo/cnnvis", "layers", "conv2"),
        ("resnet50 (blocks)", "resnet50/cnnvis", "blocks", None),
        ("resnet50 (every layer)", "resnet50/cnnvis", "layers", "conv3_block1_2_conv"),
    ]
    rows = []
    with pf.TensorBoardProcess(logdir, ("--samples_per_plugin=cnnvis=0,images=0",)) as tb:
        tb.wait_ready()
        with sync_playwright() as p:
            chrome = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = chrome.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(tb.url + "/#cnnvis")
            frame = page.wait_for_selector(
                'iframe[src*="plugin_entry.html?name=cnnvis"]', timeout=60000
            ).content_frame()
            frame.wait_for_selector("section.page[data-state]", timeout=60000)
            frame.evaluate(
                """() => { window.__long = [];
                new PerformanceObserver((l) => window.__long.push(
                  ...l.getEntries().map((e) => e.duration))).observe({entryTypes: ["longtask"]}); }"""
            )
            for label, run, fold, conv in cases:
                frame.evaluate("() => { window.__long = []; }")
                start = time.perf_counter()
                frame.evaluate(
                    "h => { document.querySelector('section.page')?.remove(); location.hash = h; }",
                    f"page=network&run={run}&fold={fold}&step=1",
                )
                frame.wait_for_selector(
                    'section.page[data-page="network"][data-state="ready"]', timeout=120000
                )
                opened = time.perf_counter() - start
                page.wait_for_timeout(300)
                longest = frame.evaluate("() => Math.max(0, ...window.__long)") / 1000.0
                columns = int(
                    frame.evaluate("document.querySelector('section.page').dataset.columns")
                )
                unit_s = None
                if conv:
                    start = time.perf_counter()
                    frame.click(f'.net-node[data-path="{conv}"] .net-tile')
                    frame.wait_for_selector(".unit-detail", timeout=60000)
                    unit_s = time.perf_counter() - start
                start = time.perf_counter()
                frame.fill(".stepper input[type=range]", "0")
                frame.wait_for_function(
                    "() => document.querySelector('section.page').dataset.step === '0'",
                    timeout=60000,
                )
                step_s = time.perf_counter() - start
                if shots:
                    page.wait_for_timeout(500)
                    file = label.split(" ")[0] + ("_layers" if "every" in label else "")
                    page.screenshot(path=os.path.join(shots, f"network_{file}.png"), full_page=True)
                rows.append((label, columns, opened, longest, unit_s, step_s))
            chrome.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--screenshots", default=None, help="folder for page screenshots")
    args = parser.parse_args()
    logdir = tempfile.mkdtemp(prefix="cnnvis_network_bench_")
    print(f"load average {load_average():.2f}; logs in {logdir}\n")
    print(
        "| model | records | layers | MB per epoch | atlas PNGs | overview | layer records |"
        " log s | forward s | log / forward |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (model, probes) in models().items():
        r = records(name, model, probes.astype(np.float32), logdir, args.repeats)
        s = r["split"]
        print(
            f"| {name} | {r['mode']} | {r['layers']} | {r['bytes'] / 1e6:.2f} | "
            f"{s['atlas PNGs'] / 1e6:.2f} MB | {s['overview JSON'] / 1e3:.0f} kB | "
            f"{s['layer records'] / 1e6:.2f} MB | {r['log']:.3f} | {r['forward']:.3f} | "
            f"{r['ratio']:.1f} |"
        )
    if args.skip_browser or not os.path.exists(CHROMIUM):
        return
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
    print("\n| page | columns | open s | longest task s | open a unit s | other epoch s |")
    print("|---|---|---|---|---|---|")
    for label, columns, opened, longest, unit_s, step_s in browser(logdir, args.screenshots):
        unit_text = "-" if unit_s is None else f"{unit_s:.2f}"
        print(
            f"| {label} | {columns} | {opened:.2f} | {longest:.2f} | {unit_text} | {step_s:.2f} |"
        )


if __name__ == "__main__":
    main()
