"""Which map to trust: every attribution method on the trained demo CNN, scored for faithfulness
(deletion and insertion areas, MuFidelity) against random maps, with localisation beside it.

Run: `python benchmarks/faithfulness_table.py [--images 128] [--markdown PATH]`, e.g.
`--markdown benchmarks/results/faithfulness.md` (the README's table). Trains the demo CNN as the
tests do (`shapes(1600, size=64, seed=0)`, 300 validation images, 8 epochs, about 30 s), then
explains the first `--images` validation images for their true class with every method and
scores all maps with one `faithfulness_scores` call at its defaults: 20 steps per curve, a
blurred baseline for all three scores, MuFidelity on 200 subsets of a 9x9 grid (20% of the
cells), Spearman, 3 per-pixel noise draws for the reference. Also printed: deletion with RISE's
zero baseline, and references made of 8x8 noise blocks.

"Beats random" counts the scores on which a method is better than the per-pixel reference by
more than two standard errors of the per-image difference. Methods are ranked by their mean
rank over the three scores.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from _timing import machine  # noqa: E402

SCORES = [("deletion_auc", True), ("insertion_auc", False), ("mu_fidelity", False)]
"""Each score and whether lower is better."""


def trained_demo():
    """The demo CNN trained on shapes, as in tests/conftest.py; with its validation data."""
    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, masks = datasets.shapes(1600, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    train_demo_model(model, images[300:], labels[300:], epochs=8)
    accuracy = float(np.mean(np.argmax(model.predict(images[:300], verbose=0), -1) == labels[:300]))
    return model, images[:300], labels[:300], masks[:300], accuracy


def method_maps(model, x: np.ndarray, target) -> tuple[dict, dict]:
    """Maps of every registered method (CAM needs a GAP head; the demo pools by max) plus
    SmoothGrad, and the seconds each took."""
    from keras_cnnvis import attribution as A

    names = [name for name in A.METHODS if name != "cam"] + ["smoothgrad"]
    maps, seconds = {}, {}
    for name in names:
        start = time.perf_counter()
        maps[name] = A.get_method(name)(model, x, target=target)
        seconds[name] = time.perf_counter() - start
    return maps, seconds


def per_image(result) -> dict:
    """`{score: (N,) values}` of one `FaithfulnessScores`."""
    return {
        "deletion_auc": result.deletion.auc,
        "insertion_auc": result.insertion.auc,
        "mu_fidelity": result.mu_fidelity.correlation,
    }


def beats(values: np.ndarray, chance: np.ndarray, lower: bool) -> bool:
    """Better than chance by more than two standard errors of the paired difference."""
    gain = (chance - values) if lower else (values - chance)
    gain = gain[np.isfinite(gain)]
    return bool(gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain)))


def table(model, x, y, masks) -> tuple[list[dict], dict, dict]:
    """Rows per method (scores, standard errors, beats, localisation, rank) and the
    references."""
    from keras_cnnvis.attribution import energy_in_mask, pointing_game
    from keras_cnnvis.attribution.faithfulness import (
        deletion_curve,
        faithfulness_scores,
        random_reference,
    )

    maps, seconds = method_maps(model, x, y)
    start = time.perf_counter()
    scores = faithfulness_scores(model, x, maps, target=y)
    zeros = deletion_curve(model, x, maps, target=y)
    zero_chance = random_reference("deletion", model, x, target=y)
    blocks = {
        "deletion_auc": random_reference("deletion", model, x, y, noise_size=8, baseline="blur"),
        "insertion_auc": random_reference("insertion", model, x, y, noise_size=8),
        "mu_fidelity": random_reference("mu_fidelity", model, x, y, noise_size=8, baseline="blur"),
    }
    scoring = time.perf_counter() - start
    chance = per_image(scores.pop("random"))
    rows = []
    for name, result in scores.items():
        values = per_image(result)
        row = {"method": name, "map_seconds": seconds[name]}
        for score, lower in SCORES:
            v = values[score][np.isfinite(values[score])]
            row[score] = float(v.mean())
            row[score + "_se"] = float(v.std(ddof=1) / np.sqrt(len(v)))
            row[score + "_beats"] = beats(values[score], chance[score], lower)
        row["deletion_zeros"] = zeros[name].mean_auc
        row["energy"] = float(np.nanmean(energy_in_mask(maps[name], masks)))
        row["pointing"] = float(np.nanmean(pointing_game(maps[name], masks)))
        rows.append(row)
    for score, lower in SCORES:
        order = sorted(rows, key=lambda r: r[score] if lower else -r[score])
        for rank, row in enumerate(order, 1):
            row[score + "_rank"] = rank
    for row in rows:
        row["rank"] = float(np.mean([row[s + "_rank"] for s, _ in SCORES]))
    rows.sort(key=lambda r: r["rank"])
    references = {
        "pixels": {s: float(np.nanmean(chance[s])) for s, _ in SCORES},
        "blocks": {
            "deletion_auc": blocks["deletion_auc"].mean_auc,
            "insertion_auc": blocks["insertion_auc"].mean_auc,
            "mu_fidelity": blocks["mu_fidelity"].mean,
        },
    }
    references["pixels"]["deletion_zeros"] = zero_chance.mean_auc
    timing = {"scoring": scoring, "maps": sum(seconds.values())}
    return rows, references, timing


def markdown(rows, references, timing, n_images: int, accuracy: float) -> str:
    info = machine()
    lines = [
        "# Which map to trust: faithfulness of every attribution method on the trained demo CNN",
        "",
        f"`python benchmarks/faithfulness_table.py --images {n_images} --markdown "
        f"benchmarks/results/faithfulness.md` ({datetime.date.today().isoformat()}; "
        f"{info['cpu']}, {info['usable_cores']} cores, tensorflow {info['tensorflow']}, "
        f"keras {info['keras']}). The demo CNN trained on `shapes` (validation accuracy "
        f"{accuracy:.3f}); the first {n_images} validation images, each explained for its true "
        "class. One `faithfulness_scores` call: 20 steps per curve, a blurred baseline (sigma "
        "4 px) for all three scores, MuFidelity on 200 subsets of a 9x9 grid (20% of the cells, "
        "Spearman), the random reference averaged over 3 per-pixel noise maps. Scores are "
        "probabilities of the true class; ± one standard error over the images. Deletion: "
        "lower is better; insertion and MuFidelity: higher. A check mark: better than the "
        "random reference by more than two standard errors of the per-image difference. "
        f"Scoring took {timing['scoring']:.0f} s, the maps {timing['maps']:.0f} s.",
        "",
        "| rank | method | deletion AUC ↓ | insertion AUC ↑ | MuFidelity ↑ | beats random | "
        "deletion, zero baseline ↓ | energy in mask | pointing game |",
        "|---:|---|---:|---:|---:|:-:|---:|---:|---:|",
    ]
    for row in rows:
        cells = []
        for score, _ in SCORES:
            mark = " ✓" if row[score + "_beats"] else ""
            cells.append(f"{row[score]:.3f} ± {row[score + '_se']:.3f}{mark}")
        wins = sum(row[s + "_beats"] for s, _ in SCORES)
        lines.append(
            f"| {row['rank']:.1f} | {row['method']} | " + " | ".join(cells) + f" | {wins}/3 | "
            f"{row['deletion_zeros']:.3f} | {row['energy']:.2f} | {row['pointing']:.2f} |"
        )
    pixels, blocks = references["pixels"], references["blocks"]
    lines += [
        f"| | *random maps (pixels)* | {pixels['deletion_auc']:.3f} | "
        f"{pixels['insertion_auc']:.3f} | {pixels['mu_fidelity']:.3f} | | "
        f"{pixels['deletion_zeros']:.3f} | | |",
        f"| | *random maps (8x8 blocks)* | {blocks['deletion_auc']:.3f} | "
        f"{blocks['insertion_auc']:.3f} | {blocks['mu_fidelity']:.3f} | | | | |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--markdown", help="write the table to this file")
    args = parser.parse_args()
    start = time.perf_counter()
    model, x_val, y_val, masks, accuracy = trained_demo()
    print(
        f"trained demo CNN: validation accuracy {accuracy:.3f} ({time.perf_counter() - start:.0f} s)"
    )
    n = args.images
    rows, references, timing = table(model, x_val[:n], y_val[:n], masks[:n])
    text = markdown(rows, references, timing, n, accuracy)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
