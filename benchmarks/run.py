"""All keras-cnnvis benchmarks in one command: every method against its compute floor and
against tf-keras-vis / tf-explain, the CNNVisCallback overhead on the demo fit, and scaling.

Run: python benchmarks/run.py [--quick] [--only attribution,patches,embeddings,synthesis,
     overhead,scaling] [--models reference,vgg] [--repeats 3] [--markdown PATH]

Models: the reference 4-conv demo CNN at 64x64 (batch 64) and a VGG-style net at 128x128
(4 blocks of 2-2-3-3 convolutions with 32-64-128-256 filters, batch 16); random weights,
nothing downloaded. Each row times the floor (run as many times as the method needs
passes), our method and the peers' same work in alternating rounds (one warm-up call each,
then at least `--repeats` rounds); it shows median seconds, the ratio to the floor (median
over rounds of ours / the floor passes of the same round) and each peer's time over ours in
the same round (> 1: ours is faster). The machine's load average is printed alongside:
compare only ratios measured in the same run. See benchmarks/README.md for what each figure
means.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import _timing  # noqa: E402

SECTIONS = ("attribution", "patches", "embeddings", "synthesis", "overhead", "scaling")
MODELS = ("reference", "vgg")
PEERS = ("tf-keras-vis", "tf-explain")
TARGET = 1.5
SAMPLES, STEPS = 20, 32  # SmoothGrad noisy copies; integrated-gradients path points
SYNTHESIS_BATCH = 4
TSNE_POINTS = 1000  # EmbeddingCallback's default max_points (the cap)


def vgg_style(size: int = 128, n_classes: int = 5, seed: int = 0):
    """A VGG-style CNN (random weights): blocks of 2, 2, 3, 3 3x3 convolutions with 32, 64,
    128, 256 filters and max pooling, Flatten, Dense `features` (256), Dense `predictions`."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    for b, (width, convs) in enumerate(zip((32, 64, 128, 256), (2, 2, 3, 3)), 1):
        for j in range(1, convs + 1):
            x = keras.layers.Conv2D(
                width, 3, padding="same", activation="relu", name=f"block{b}_conv{j}"
            )(x)
        x = keras.layers.MaxPooling2D(name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(256, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg_style")


def setup_model(kind: str) -> dict:
    """The model, its image batch and classes, and its description."""
    from keras_cnnvis.datasets import shapes
    from keras_cnnvis.demo import build_demo_model

    if kind == "reference":
        model, size, batch = build_demo_model((64, 64, 3), 5, seed=0), 64, 64
        label = "4-conv CNN 64x64, batch 64"
    else:
        model, size, batch = vgg_style(128), 128, 16
        label = "VGG-style 128x128, batch 16"
    x, y, _ = shapes(batch, size=size, seed=1)
    return {"kind": kind, "model": model, "x": x, "classes": y.astype(np.int32), "label": label}


# -- rows: (section, name, our fn, floor fn, passes, floor label, {peer: fn}, {peer: calls})
def attribution_rows(m: dict) -> list[tuple]:
    import attribution as bench

    model, x, classes = m["model"], m["x"], m["classes"]
    fwd, fwd_bwd = _timing.floors(model, x, classes)
    patch = x.shape[1] // 8  # non-overlapping 8x8 grid of patches: tf-explain's occlusion
    peers = bench.peer_methods(model, x, classes, SAMPLES, STEPS, occlusion_patch=patch)
    rows = []
    for name, fn, count, kind in bench.methods(
        model, x, classes, SAMPLES, STEPS, occlusion=(patch, patch), extended=False
    ):
        floor = fwd_bwd if kind == "fwd+bwd" else fwd
        theirs = {lib: peers[lib][name] for lib in peers if name in peers[lib]}
        rows.append(("attribution", name, fn, floor, count, kind, theirs, {}))
    return rows


def patches_row(m: dict) -> tuple:
    from keras_cnnvis.callbacks.cnnvis import auto_layers
    from keras_cnnvis.patches import PatchMiner

    model, x = m["model"], m["x"]
    fwd, _ = _timing.floors(model, x, m["classes"])
    layers = auto_layers(model)  # the layers CNNVisCallback mines
    miner = PatchMiner(model, layers, k=9)  # built once, as in the callback
    name = f"patch mining ({len(layers)} layers, k=9)"
    return ("patches", name, lambda: miner.update(x), fwd, 1, "fwd", {}, {})


def tsne_rows(m: dict, warm: bool = True) -> list[tuple]:
    """t-SNE of `TSNE_POINTS` feature vectors (fresh and, with `warm`, warm-started) against
    scikit-learn's TSNE with the same settings on the same PCA-reduced features (its floor)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    from keras_cnnvis.datasets import shapes
    from keras_cnnvis.embeddings import LayerFeatures, project

    size = m["x"].shape[1]
    images, _, _ = shapes(TSNE_POINTS, size=size, seed=2)
    feats, _ = LayerFeatures(m["model"])(images)
    x = feats.astype(np.float64)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:50].T
    fresh = project(feats, "tsne")
    init = fresh.points.astype(np.float64)

    def sklearn(start, exaggeration, iterations):
        def run():
            tsne = TSNE(
                n_components=2,
                perplexity=30.0,
                init=start,
                early_exaggeration=exaggeration,
                learning_rate=max(len(reduced) / 48.0, 50.0),
                max_iter=iterations,
                random_state=0,
            )
            with threadpool_limits(limits=1, user_api="openmp"):
                tsne.fit_transform(reduced)

        return run

    n = len(feats)
    rows = [
        (
            "embeddings",
            f"t-SNE fresh ({n} points, 1000 it.)",
            lambda: project(feats, "tsne"),
            sklearn("pca", 12.0, 1000),
            1,
            "sklearn",
            {},
            {},
        ),
        (
            "embeddings",
            f"t-SNE warm start ({n} points, 500 it.)",
            lambda: project(feats, "tsne", init=init),
            sklearn(init - init.mean(0), 1.0, 500),
            1,
            "sklearn",
            {},
            {},
        ),
    ]
    return rows if warm else rows[:1]


def synthesis_rows(m: dict, peer_steps: int = 10) -> list[tuple]:
    """One `Renderer` step at its defaults (Fourier parameterisation, default transforms;
    against tf-keras-vis `ActivationMaximization`, per step) and without transforms on
    pixels (the loop alone), each against a compiled forward+backward of the batch."""
    import tensorflow as tf

    from keras_cnnvis.synthesis import objectives as O
    from synthesis import step_functions

    model, shape, b = m["model"], m["x"].shape[1:], SYNTHESIS_BATCH
    objective = O.class_logit(0)
    step, floor = step_functions(model, objective, shape, b, "fourier", "default")
    bare, bare_floor = step_functions(model, objective, shape, b, "pixel", None)
    peers, calls = {}, {}
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        am = ActivationMaximization(model, model_modifier=ReplaceToLinear(), clone=True)
        seed = tf.random.uniform((b,) + tuple(shape), seed=0)
        score = CategoricalScore([0] * b)
        peers["tf-keras-vis"] = lambda: am(
            score, seed_input=seed, input_range=(0.0, 1.0), steps=peer_steps
        )
        calls["tf-keras-vis"] = peer_steps
    except ImportError:
        pass
    kind = f"fwd+bwd (batch {b})"
    return [
        (
            "synthesis",
            f"synthesis step (batch {b}, fourier, transforms)",
            step,
            floor,
            1,
            kind,
            peers,
            calls,
        ),
        (
            "synthesis",
            f"synthesis step (batch {b}, pixel, no transforms)",
            bare,
            bare_floor,
            1,
            kind,
            {},
            {},
        ),
    ]


def measure(row: tuple, repeats: int, budget: float) -> dict:
    """Times one row in alternating rounds; returns medians and ratios.

    Each round runs the floor pass `passes` times in a row (the work the method must do,
    spread over a similar stretch of time, so a load change during a long method hits
    its floor too); "floor" seconds are per pass.
    """
    section, name, fn, floor, count, kind, peers, calls = row

    def floor_passes():
        for _ in range(count):
            floor()

    fns = {"floor": floor_passes, "ours": fn, **peers}
    times = _timing.interleaved(fns, repeats, budget)
    times["floor"] = [t / count for t in times["floor"]]
    for lib, n in calls.items():  # peers timed over several steps: per-step seconds
        times[lib] = [t / n for t in times[lib]]
    out = {
        "section": section,
        "method": name,
        "passes": f"{count} {kind}",
        "ours": float(np.median(times["ours"])),
        "floor": float(np.median(times["floor"])),
        "ratio": _timing.median_ratio(times["ours"], times["floor"], count),
        "rounds": len(times["ours"]),
        "load": _timing.load_average(),
        "peers": {},
    }
    for lib in peers:
        out["peers"][lib] = {
            "seconds": float(np.median(times[lib])),
            "speedup": _timing.median_ratio(times[lib], times["ours"]),
        }
    return out


HEADER = (
    f"{'method':<46}{'passes':>20}{'ours s':>9}{'floor s':>9}{'ratio':>7}  "
    f"{'tf-keras-vis s (x)':>19}{'tf-explain s (x)':>19}{'load':>6}"
)


def format_row(r: dict) -> str:
    flag = "" if r["ratio"] <= TARGET else " SLOW"
    peers = ""
    for lib in PEERS:
        p = r["peers"].get(lib)
        cell = f"{p['seconds']:.3f} ({p['speedup']:.2f}x)" if p else "-"
        peers += f"{cell:>19}"
    return (
        f"{r['method']:<46}{r['passes']:>20}{r['ours']:>9.3f}{r['floor']:>9.3f}"
        f"{r['ratio']:>7.2f}  {peers}{r['load']:>6.1f}{flag}"
    )


def markdown_table(results: list[dict]) -> list[str]:
    lines = [
        "| model | method | floor passes | ours (s) | floor (s) | ratio to floor "
        "| tf-keras-vis (s) | tf-keras-vis / ours | tf-explain (s) | tf-explain / ours | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = []
        for lib in PEERS:
            p = r["peers"].get(lib)
            cells += [f"{p['seconds']:.3f}", f"{p['speedup']:.2f}x"] if p else ["-", "-"]
        ratio = f"{r['ratio']:.2f}" + ("" if r["ratio"] <= TARGET else " (over 1.5)")
        lines.append(
            f"| {r['model']} | {r['method']} | {r['passes']} | {r['ours']:.3f} | "
            f"{r['floor']:.3f} | {ratio} | " + " | ".join(cells) + f" | {r['load']:.1f} |"
        )
    return lines


def targets(results: list[dict], log=print) -> list[str]:
    """Prints and returns (markdown bullets) how the table meets the targets: every method
    within 1.5x of its floor, and faster than the fastest peer on every shared method
    (within 5% counts as a tie)."""
    over = [r for r in results if r["ratio"] > TARGET]
    lines = [
        f"- Within {TARGET}x of the floor: {len(results) - len(over)} of {len(results)} rows"
        + (
            "; over: "
            + "; ".join(f"{r['method']} on {r['model']} ({r['ratio']:.2f}x)" for r in over)
            if over
            else ""
        )
        + "."
    ]
    shared = [r for r in results if r["peers"]]
    verdict: dict[str, list[str]] = {"faster": [], "tie": [], "slower": []}
    for r in shared:
        lib, p = min(r["peers"].items(), key=lambda kv: kv[1]["speedup"])
        key = "faster" if p["speedup"] >= 1.05 else "tie" if p["speedup"] >= 0.95 else "slower"
        verdict[key].append(f"{r['method']} on {r['model']} vs {lib} ({p['speedup']:.2f}x)")
    if shared:
        lines.append(
            f"- Faster than the fastest peer (by > 5%) on {len(verdict['faster'])} of "
            f"{len(shared)} shared rows."
        )
        if verdict["tie"]:
            lines.append("- Tied (within 5%): " + "; ".join(verdict["tie"]) + ".")
        if verdict["slower"]:
            lines.append("- Slower: " + "; ".join(verdict["slower"]) + ".")
    for line in lines:
        log(line)
    return lines


def run_table(models, sections, repeats, budget, quick=False, log=print) -> list[dict]:
    results = []
    for kind in models:
        m = setup_model(kind)
        log(f"\n{m['label']} ({m['model'].count_params():,} parameters)")
        log(HEADER)
        rows = []
        if "attribution" in sections:
            rows += attribution_rows(m)
        if "patches" in sections:
            rows.append(patches_row(m))
        if "embeddings" in sections and kind == "reference":  # t-SNE: model-independent
            rows += tsne_rows(m, warm=not quick)
        if "synthesis" in sections:
            rows += synthesis_rows(m)
        for row in rows:
            r = measure(row, repeats, budget)
            r["model"] = m["label"]
            results.append(r)
            log(format_row(r))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reference model, small run")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--models", default=None, help="reference,vgg (quick: reference)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (3; quick 1)")
    parser.add_argument("--markdown", default=None, help="write the results as markdown here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the peers' Keras 3 input-structure warnings
    import keras

    keras.config.disable_interactive_logging()  # tf-explain's model.predict progress bars
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    models = (args.models or ("reference" if args.quick else ",".join(MODELS))).split(",")
    if set(models) - set(MODELS):
        parser.error(f"unknown models {sorted(set(models) - set(MODELS))}; choose from {MODELS}")
    repeats = args.repeats or (1 if args.quick else 3)
    budget = 0.5 if args.quick else 2.0

    started = time.perf_counter()
    info = _timing.machine()
    out: list[str] = []

    def log(line: str = "") -> None:
        print(line, flush=True)

    log(
        f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"load average {info['load_average']:.1f} at start"
    )
    log(
        "versions: "
        + ", ".join(
            f"{k} {info[k]}"
            for k in info
            if k not in ("cpu", "cores", "usable_cores", "load_average")
        )
    )
    log(
        f"mode: {'quick' if args.quick else 'full'}, sections {','.join(sections)}, models "
        f"{','.join(models)}, at least {repeats} rounds per row; SmoothGrad {SAMPLES} samples, "
        f"integrated gradients {STEPS} steps"
    )
    loads = [info["load_average"]]
    table, target_lines = [], []
    table_sections = [s for s in sections if s not in ("overhead", "scaling")]
    if table_sections:
        log(
            "\nratio = ours / (passes x floor), median over rounds; (x) = peer / ours, > 1: ours faster"
        )
        table = run_table(models, table_sections, repeats, budget, args.quick, log)
        loads += [r["load"] for r in table]
        log("\nTargets:")
        target_lines = targets(table, log)

    overhead_lines: list[str] = []
    if "overhead" in sections:
        import overhead as ov

        log("\nCNNVisCallback overhead on the demo fit (interleaved fits):")
        epochs, rounds = (2, 1) if args.quick else (8, 3)
        result = ov.overhead(epochs, rounds, log=log)
        loads += result["loads"]
        ov.report(result, log=lambda line: (overhead_lines.append(line), log(line)))

    scaling_lines: list[str] = []
    if "scaling" in sections:
        import scaling as sc

        sizes = (1000, 4000) if args.quick else (1000, 10000, 50000)
        log(f"\nScaling: patch mining and embeddings at {', '.join(map(str, sizes))} images:")
        rows = sc.scaling(sizes, log=log)
        loads += [r["load"] for what in rows for r in rows[what]]
        scaling_lines = sc.report(rows, log=log)

    minutes = (time.perf_counter() - started) / 60
    log(
        f"\ndone in {minutes:.1f} min; load average during the run {min(loads):.1f}-"
        f"{max(loads):.1f} on {info['cores']} cores"
    )
    if args.markdown:
        out = [
            "# keras-cnnvis benchmarks: latest run",
            "",
            f"`{' '.join(['python benchmarks/run.py'] + sys.argv[1:])}` "
            f"({'quick' if args.quick else 'full'} run, {minutes:.0f} min, "
            f"{time.strftime('%Y-%m-%d')}).",
            "",
            f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
            f"shared with other work: 1-minute load average {min(loads):.1f}-{max(loads):.1f} "
            "during the run (per row in the table).",
            "- Versions: "
            + ", ".join(
                f"{k} {info[k]}"
                for k in info
                if k not in ("cpu", "cores", "usable_cores", "load_average")
            )
            + ".",
            f"- Each row: one warm-up call each, then at least {repeats} alternating rounds "
            "of floor, ours and peers; seconds are medians, ratios are medians of the "
            "ratios within a round. SmoothGrad: 20 noisy samples; integrated gradients: "
            "32 steps; occlusion: an 8x8 grid of non-overlapping patches (tf-explain's "
            "method); peer ratio = peer seconds / ours (> 1: ours is faster).",
            "",
        ]
        if table:
            out += ["## Methods against their floor and the peers", ""] + markdown_table(table)
            out += ["", "Targets:", ""] + target_lines
        if overhead_lines:
            out += ["", "## CNNVisCallback overhead (demo fit)", "", "```"]
            out += overhead_lines + ["```"]
        if scaling_lines:
            out += ["", "## Scaling (fresh process per size)", ""] + scaling_lines
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")
        log(f"markdown written to {args.markdown}")


if __name__ == "__main__":
    main()
