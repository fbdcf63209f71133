"""Cost of the faithfulness scores on the reference 4-conv CNN (64x64, CPU): each score per image
in forward passes and in seconds, against one compiled forward pass of the same model.

Run: `python benchmarks/faithfulness.py [--images 16] [--repeats 3] [--scores]`. Prints
figures measured in this one run: the floor is one compiled forward pass of a batch of 256
images (the scores' default batch size), timed alternately with each score; "= fwd passes" is
the score's seconds per image over the floor's, and "ratio" the score's time over that of as
many floor passes as it needs (1.0 = no overhead beyond the model). The last rows score two
methods' maps at once with `faithfulness_scores`: at its defaults and at the attribution
callbacks' `faithfulness=True` settings (what `CNNVisCallback` adds to its Grad-CAM monitor),
beside the Grad-CAM and LayerCAM maps themselves. `--scores` also trains the demo CNN on
`shapes` and prints every attribution method's scores beside the random references
(`faithfulness_table.py`, which writes the README's table).
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from _timing import floors, machine, paired  # noqa: E402

BATCH = 256


def score_rows(model, x: np.ndarray, steps: int = 20, samples: int = 200, draws: int = 3):
    """`(name, fn, passes per image, compiled calls)` for each score and reference on `x`.

    Passes per image count the clean pass: a curve needs `1 + steps`, MuFidelity
    `1 + samples`, a curve's reference `1 + draws * steps`, MuFidelity's `1 + samples`
    (its draws share the drops); `faithfulness_scores` of M methods `1 + 2 * (M + draws) *
    steps + samples`. Calls are those of the compiled forward function at the default batch
    size of 256.
    """
    from keras_cnnvis.attribution.faithfulness import (
        deletion_curve,
        faithfulness_scores,
        insertion_curve,
        mu_fidelity,
        random_reference,
    )
    from keras_cnnvis.callbacks.attribution_base import FAITHFULNESS

    n = len(x)
    clean = math.ceil(n / BATCH)
    rng = np.random.default_rng(0)
    maps = rng.random(x.shape[:3]).astype(np.float32)
    two = {"a": maps, "b": rng.random(x.shape[:3]).astype(np.float32)}
    curve_calls = clean + math.ceil(steps * n / BATCH)
    mu_calls = clean + math.ceil(samples * n / BATCH)
    reference_calls = clean + draws * math.ceil(steps * n / BATCH)

    def combined(steps, samples, draws):
        passes = 1 + 2 * (2 + draws) * steps + samples
        calls = (
            clean + 2 * (2 + draws) * math.ceil(steps * n / BATCH) + math.ceil(samples * n / BATCH)
        )
        return passes, calls

    cb = FAITHFULNESS
    return [
        (
            f"deletion({steps})",
            lambda: deletion_curve(model, x, maps, steps=steps),
            1 + steps,
            curve_calls,
        ),
        (
            f"insertion({steps}, blur)",
            lambda: insertion_curve(model, x, maps, steps=steps),
            1 + steps,
            curve_calls,
        ),
        (
            f"mu_fidelity({samples})",
            lambda: mu_fidelity(model, x, maps, nb_samples=samples),
            1 + samples,
            mu_calls,
        ),
        (
            f"reference deletion x{draws}",
            lambda: random_reference("deletion", model, x, draws=draws, steps=steps),
            1 + draws * steps,
            reference_calls,
        ),
        (
            f"reference insertion x{draws}",
            lambda: random_reference("insertion", model, x, draws=draws, steps=steps),
            1 + draws * steps,
            reference_calls,
        ),
        (
            f"reference mu_fidelity x{draws}",
            lambda: random_reference("mu_fidelity", model, x, draws=draws, nb_samples=samples),
            1 + samples,
            mu_calls,
        ),
        (
            "faithfulness_scores, 2 maps",
            lambda: faithfulness_scores(model, x, two),
            *combined(steps, samples, draws),
        ),
        (
            "faithfulness=True, 2 maps",
            lambda: faithfulness_scores(model, x, two, **cb),
            *combined(cb["steps"], cb["nb_samples"], cb["draws"]),
        ),
    ]


def cost_table(model, n_images: int, repeats: int) -> None:
    from keras_cnnvis.datasets import shapes

    x, _, _ = shapes(n_images, size=64, seed=1)
    floor_x, floor_y, _ = shapes(BATCH, size=64, seed=2)
    forward, _ = floors(model, floor_x, floor_y)
    print(
        f"floor: one compiled forward pass of {BATCH} images; {n_images} images scored. Each row "
        "is timed alternating with the floor:\n'ms/fwd' is the floor's best time per image in "
        "that row, '= fwd passes' the score's best seconds per image over it,\n'ratio' the "
        "median over rounds of seconds / (passes x the floor run next to it).\n"
    )
    print(
        f"{'score':<30}{'passes/img':>11}{'calls':>7}{'s/img':>9}{'ms/fwd':>8}"
        f"{'= fwd passes':>14}{'ratio':>8}"
    )
    for name, fn, passes, calls in score_rows(model, x):
        count = passes * n_images / BATCH  # floor runs of 256 images worth the same passes
        seconds, floor_seconds, ratio = paired(fn, forward, count, repeats)
        per_image, per_pass = seconds / n_images, floor_seconds / BATCH
        print(
            f"{name:<30}{passes:>11}{calls:>7}{per_image:>9.4f}{per_pass * 1e3:>8.3f}"
            f"{per_image / per_pass:>14.1f}{ratio:>8.2f}"
        )
    from keras_cnnvis import attribution as A

    def cams():
        A.grad_cam(model, x)
        A.layer_cam(model, x)

    seconds, floor_seconds, _ = paired(cams, forward, 1, repeats)
    per_image, per_pass = seconds / n_images, floor_seconds / BATCH
    print(
        f"{'grad_cam + layer_cam maps':<30}{'-':>11}{'-':>7}{per_image:>9.4f}"
        f"{per_pass * 1e3:>8.3f}{per_image / per_pass:>14.1f}{'-':>8}"
    )


def scores_table(n_images: int) -> None:
    """Every method's scores on the trained demo CNN (see `faithfulness_table.py`)."""
    from faithfulness_table import markdown, table, trained_demo

    model, x, y, masks, accuracy = trained_demo()
    rows, references, timing = table(model, x[:n_images], y[:n_images], masks[:n_images])
    print("\n" + markdown(rows, references, timing, n_images, accuracy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scores", action="store_true", help="train the demo, score methods")
    args = parser.parse_args()

    from keras_cnnvis.demo import build_demo_model

    info = machine()
    print(
        f"{info['cpu']}, {info['usable_cores']} usable cores, load {info['load_average']:.1f}; "
        f"tensorflow {info['tensorflow']}, keras {info['keras']}"
    )
    print("reference: the demo 4-conv CNN 64x64 (random weights: cost does not depend on them)")
    cost_table(build_demo_model((64, 64, 3), 5, seed=0), args.images, args.repeats)
    if args.scores:
        scores_table(args.images)


if __name__ == "__main__":
    main()
