"""Cost of the faithfulness scores on the reference 4-conv CNN (64x64, CPU): each score per image
in forward passes and in seconds, against one compiled forward pass of the same model.

Run: `python benchmarks/faithfulness.py [--images 16] [--repeats 3] [--scores]`. Prints
figures measured in this one run: the floor is one compiled forward pass of a batch of 256
images (the scores' default batch size), timed alternately with each score; "= fwd passes" is
the score's seconds per image over the floor's, and "ratio" the score's time over that of as
many floor passes as it needs (1.0 = no overhead beyond the model). `--scores` also trains the demo CNN on `shapes` (as the
tests do, about 25 s) and prints every attribution method's scores beside the random
references.
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
    (its draws share the drops). Calls are those of the compiled forward function at the
    default batch size of 256.
    """
    from keras_cnnvis.attribution.faithfulness import (
        deletion_curve,
        insertion_curve,
        mu_fidelity,
        random_reference,
    )

    n = len(x)
    clean = math.ceil(n / BATCH)
    maps = np.random.default_rng(0).random(x.shape[:3]).astype(np.float32)
    curve_calls = clean + math.ceil(steps * n / BATCH)
    mu_calls = clean + math.ceil(samples * n / BATCH)
    reference_calls = clean + draws * math.ceil(steps * n / BATCH)
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


def method_maps(model, x: np.ndarray) -> dict:
    """Maps of every attribution method for the predicted classes, by name."""
    from keras_cnnvis import attribution as A

    # CAM needs a global-average-pooling head; the demo pools by max.
    names = [name for name in A.METHODS if name != "cam"] + ["smoothgrad"]
    return {name: A.get_method(name)(model, x) for name in names}


def scores_table(n_images: int) -> None:
    from keras_cnnvis import datasets
    from keras_cnnvis.attribution.faithfulness import (
        deletion_curve,
        insertion_curve,
        mu_fidelity,
        random_reference,
    )
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, _ = datasets.shapes(1600, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    train_demo_model(model, images[300:], labels[300:], epochs=8)
    x = images[:n_images]
    accuracy = float(np.mean(np.argmax(model.predict(images[:300], verbose=0), -1) == labels[:300]))
    print(f"\ntrained demo CNN (val accuracy {accuracy:.3f}), first {n_images} validation images")
    print(
        "deletion: lower is better; insertion and MuFidelity: higher is better. Probabilities "
        "of the predicted class, 20 steps, MuFidelity 9x9 grid / 20% / 200 subsets.\n"
    )
    columns = [
        ("del zeros", lambda m: deletion_curve(model, x, m).mean_auc),
        ("del blur", lambda m: deletion_curve(model, x, m, baseline="blur").mean_auc),
        ("del mean", lambda m: deletion_curve(model, x, m, baseline="mean").mean_auc),
        ("ins blur", lambda m: insertion_curve(model, x, m).mean_auc),
        ("mu_fid", lambda m: mu_fidelity(model, x, m).mean),
    ]
    print(f"{'maps':<26}" + "".join(f"{c:>11}" for c, _ in columns))
    for name, maps in method_maps(model, x).items():
        print(f"{name:<26}" + "".join(f"{fn(maps):>11.3f}" for _, fn in columns))
    references = [
        ("del zeros", "deletion", {}),
        ("del blur", "deletion", {"baseline": "blur"}),
        ("del mean", "deletion", {"baseline": "mean"}),
        ("ins blur", "insertion", {}),
        ("mu_fid", "mu_fidelity", {}),
    ]
    for label, size in (("random (pixels)", None), ("random (8x8 blocks)", 8)):
        values = []
        for _, score, kwargs in references:
            result = random_reference(score, model, x, noise_size=size, **kwargs)
            values.append(result.mean if score == "mu_fidelity" else result.mean_auc)
        print(f"{label:<26}" + "".join(f"{v:>11.3f}" for v in values))


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
