"""Benchmark: the per-record pictures (confusion matrix, embedding scatter, robustness heatmap)
drawn directly (numpy + OpenCV + cached FreeType glyphs, keras_cnnvis.rendering.raster) against
the matplotlib figures they replaced, and against a reused matplotlib figure.

Run: python benchmarks/render.py [--repeats 7] [--budget 1.0] [--save DIR] [--json PATH]

Inputs are realistic: confusion matrices of 5, 10 and 100 classes (counts of 2000 or 20000
examples), PCA and t-SNE layouts of 400 and 1000 points in 10 classes with 10% misclassified
and two scores, and a 5 x 3 corruption table with the clean column. "old" is the matplotlib
code of commit f4f913f (copied below, only for this comparison; the scatter's old path is
still the package's `scatter_figure` rendered with the Agg canvas); "reused" (confusion only)
keeps one matplotlib figure and updates its image and texts (the cheapest matplotlib path:
no figure building, no tight_layout). Each row runs the alternatives in alternating rounds
(`_timing.interleaved`, one warm-up call each); seconds are medians, the ratio is the median
over rounds of old / new. "cpu ms" is the new drawer's thread CPU time per call (what a
background thread takes from training on a 2-core machine). `--save DIR` writes the old and
new pictures as PNG files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import interleaved, machine, median_ratio  # noqa: E402

import numpy as np  # noqa: E402

NAMES = ["circle", "square", "triangle", "star", "cross", "ellipse", "pentagon", "hexagon"]
NAMES += ["ring", "diamond"]


def old_render_confusion(matrix, class_names, title=None):
    """The matplotlib confusion matrix of commit f4f913f (image only)."""
    from matplotlib.figure import Figure

    from keras_cnnvis.rendering.image import figure_to_array

    matrix = np.asarray(matrix)
    n = len(matrix)
    support = matrix.sum(axis=1, keepdims=True)
    frac = np.where(support > 0, matrix / np.maximum(support, 1), 0.0)
    longest = max((len(s) for s in class_names), default=1)
    side = min(14.0, 1.6 + 0.55 * n + 0.06 * longest)
    fig = Figure(figsize=(side + 0.8, side), dpi=100)
    ax = fig.add_subplot()
    shown = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    if n <= 30:
        size = max(6, min(12, 120 // max(n, 1)))
        for t in range(n):
            for p in range(n):
                ax.text(
                    p,
                    t,
                    str(int(matrix[t, p])),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if frac[t, p] > 0.5 else "black",
                )
    ax.set_xticks(
        range(n),
        class_names,
        rotation=45 if longest > 3 else 0,
        ha="right" if longest > 3 else "center",
    )
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return figure_to_array(fig)


class ReusedConfusion:
    """One matplotlib confusion figure kept between calls: only the fractions and the count
    texts change (valid while the classes stay the same)."""

    def __init__(self, matrix, class_names, title=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(matrix)
        longest = max((len(s) for s in class_names), default=1)
        side = min(14.0, 1.6 + 0.55 * n + 0.06 * longest)
        self.fig = Figure(figsize=(side + 0.8, side), dpi=100)
        ax = self.fig.add_subplot()
        self.image = ax.imshow(np.zeros((n, n)), cmap="Blues", vmin=0.0, vmax=1.0)
        self.fig.colorbar(self.image, ax=ax, fraction=0.046, pad=0.04)
        size = max(6, min(12, 120 // max(n, 1)))
        self.texts = [
            ax.text(p, t, "", ha="center", va="center", fontsize=size)
            for t in range(n)
            for p in range(n)
        ] if n <= 30 else []  # fmt: skip
        ax.set_xticks(range(n), class_names, rotation=45, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_title(title or "")
        self.fig.tight_layout()
        self.canvas = FigureCanvasAgg(self.fig)

    def __call__(self, matrix):
        matrix = np.asarray(matrix)
        support = matrix.sum(axis=1, keepdims=True)
        frac = np.where(support > 0, matrix / np.maximum(support, 1), 0.0)
        self.image.set_data(frac)
        for text, count, f in zip(self.texts, matrix.ravel(), frac.ravel()):
            text.set_text(str(int(count)))
            text.set_color("white" if f > 0.5 else "black")
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].astype(np.float32) / 255.0


def old_render_heatmap(accuracy, corruptions, severities, clean=None, title=None):
    """The matplotlib robustness heatmap of commit f4f913f."""
    from matplotlib.figure import Figure

    from keras_cnnvis.rendering.image import figure_to_array

    table = np.asarray(accuracy, np.float64)
    columns = [f"sev {s}" for s in severities]
    if clean is not None:
        table = np.concatenate([np.full((len(table), 1), float(clean)), table], axis=1)
        columns = ["clean"] + columns
    rows, cols = table.shape
    longest = max((len(n) for n in corruptions), default=1)
    fig = Figure(figsize=(1.4 + 0.075 * longest + 0.62 * cols, 1.0 + 0.34 * rows), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(table, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    for r in range(rows):
        for c in range(cols):
            value = table[r, c]
            text = "–" if not np.isfinite(value) else f"{value:.2f}"
            dark = np.isfinite(value) and (value < 0.2 or value > 0.85)
            colour = "white" if dark else "black"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour)
    if clean is not None:
        ax.axvline(0.5, color="white", linewidth=2)
    ax.set_xticks(range(cols), columns, fontsize=8)
    ax.set_yticks(range(rows), [n.replace("_", " ") for n in corruptions], fontsize=8)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


def old_scatter_image(*args, **kwargs):
    """The matplotlib scatter of commit f4f913f: `scatter_figure` through the Agg canvas."""
    from keras_cnnvis.rendering.embedding import scatter_figure
    from keras_cnnvis.rendering.image import figure_to_array

    return figure_to_array(scatter_figure(*args, **kwargs))


def confusion_counts(n: int, examples: int, noise: float, rng) -> np.ndarray:
    y = rng.integers(0, n, examples)
    pred = np.where(rng.random(examples) < noise, rng.integers(0, n, examples), y)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (y, pred), 1)
    return matrix


def cases(rng) -> dict:
    """`{name: (old, new, extra alternatives)}` zero-argument drawers."""
    from keras_cnnvis.features.projection import project
    from keras_cnnvis.rendering.confusion import render_confusion
    from keras_cnnvis.rendering.embedding import scatter_image
    from keras_cnnvis.rendering.robustness import render_heatmap

    out = {}
    for n, examples, noise, names in [
        (5, 2000, 0.3, NAMES[:5]),
        (10, 2000, 0.3, NAMES),
        (100, 20000, 0.5, [f"class_{i}_name" for i in range(100)]),
    ]:
        m = confusion_counts(n, examples, noise, rng)
        title = f"step 4: accuracy {np.trace(m) / m.sum():.3f} (n={m.sum()})"
        reused = ReusedConfusion(m, names, title)
        out[f"confusion {n} classes"] = (
            lambda m=m, names=names, title=title: old_render_confusion(m, names, title),
            lambda m=m, names=names, title=title: render_confusion(m, names, title)[0],
            {"reused": lambda m=m, reused=reused: reused(m)},
        )
    scores = {"trustworthiness": 0.912, "knn_accuracy": 0.85}
    for points, method in [(400, "pca"), (400, "tsne"), (1000, "pca")]:
        centres = rng.normal(size=(10, 32)) * 4
        labels = rng.integers(0, 10, points)
        feats = centres[labels] + rng.normal(size=(points, 32))
        preds = np.where(rng.random(points) < 0.1, rng.integers(0, 10, points), labels)
        proj = project(feats, method, seed=0)
        args = (proj, labels, preds, NAMES, f"{method} of 'conv3', epoch 4", scores)
        out[f"scatter {method} {points} points"] = (
            lambda args=args: old_scatter_image(*args),
            lambda args=args: scatter_image(*args),
            {},
        )
    accuracy = np.clip(0.9 - 0.1 * np.arange(1, 4)[None] * rng.random((5, 1)), 0, 1)
    corruptions = ["gaussian_noise", "motion_blur", "brightness", "contrast", "jpeg_compression"]
    title = "step 4: clean 0.930, corrupted 0.712 (n=400)"
    heat = (accuracy, corruptions, [1, 2, 3], 0.93, title)
    out["heatmap 5x3 + clean"] = (
        lambda: old_render_heatmap(*heat),
        lambda: render_heatmap(*heat),
        {},
    )
    return out


def cpu_ms(fn, calls: int = 5) -> float:
    """Median thread CPU time of one call, in milliseconds."""
    times = []
    for _ in range(calls):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return 1e3 * float(np.median(times))


def measure(repeats: int, budget: float, save: str | None) -> dict:
    rows = {}
    for name, (old, new, extra) in cases(np.random.default_rng(0)).items():
        fns = {"old": old, "new": new, **extra}
        times = interleaved(fns, repeats=repeats, budget=budget)
        rows[name] = {
            "old_ms": 1e3 * float(np.median(times["old"])),
            "new_ms": 1e3 * float(np.median(times["new"])),
            "ratio": median_ratio(times["old"], times["new"]),
            "new_cpu_ms": cpu_ms(new),
            "load": os.getloadavg()[0],
        }
        for alt in extra:
            rows[name][f"{alt}_ms"] = 1e3 * float(np.median(times[alt]))
            rows[name][f"{alt}_ratio"] = median_ratio(times[alt], times["new"])
        if save:
            from keras_cnnvis.rendering.image import save_png

            os.makedirs(save, exist_ok=True)
            slug = name.replace(" ", "_").replace("+", "plus")
            save_png(os.path.join(save, f"old_{slug}.png"), old())
            save_png(os.path.join(save, f"new_{slug}.png"), new())
    return rows


def report(rows: dict) -> str:
    lines = [
        "Per-record pictures: matplotlib (old) vs direct drawing (new); medians of alternating "
        "rounds, ratio = median of old / new per round",
        "",
        f"{'picture':28s} {'old ms':>8s} {'new ms':>8s} {'old/new':>8s} {'new cpu ms':>10s} "
        f"{'reused mpl ms':>13s} {'reused/new':>10s} {'load':>5s}",
    ]
    for name, r in rows.items():
        reused = f"{r['reused_ms']:13.1f} {r['reused_ratio']:9.1f}x" if "reused_ms" in r else ""
        reused = reused or f"{'-':>13s} {'-':>10s}"
        lines.append(
            f"{name:28s} {r['old_ms']:8.1f} {r['new_ms']:8.1f} {r['ratio']:7.1f}x "
            f"{r['new_cpu_ms']:10.1f} {reused} {r['load']:5.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per row, at least")
    parser.add_argument("--save", default=None, help="directory for old/new PNG files")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['usable_cores']} cores, load {info['load_average']:.2f}")
    rows = measure(args.repeats, args.budget, args.save)
    print(report(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
