"""`cnnvis health MODEL.keras`: filter health of a saved model, as a table per layer in the
terminal and a PNG report (flagged filters outlined).
"""

from __future__ import annotations

import argparse

import numpy as np


def probe_images(data: str, shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    """`n` probe images for a model input `shape = (H, W, C)` from `data`.

    `data` is a built-in set (`"shapes"`, `"digits"`, ...), a folder of class subfolders or
    an `.npy`/`.npz` file (see `keras_cnnvis.analysis.load_images`); images are float32 in
    [0, 1], resized to `H x W`, and converted between grayscale and RGB to match `C`.

    Raises:
        ValueError: for an input that is not an image of fixed size, unreadable data or an
            unsupported channel count.
        FileNotFoundError: for data that is neither a file, a folder nor a built-in set.
    """
    from keras_cnnvis.analysis import fit_images, load_images, to_unit

    if len(shape) != 3 or None in shape[:2]:
        raise ValueError(
            f"The model takes inputs of shape {shape}; `cnnvis health --data` needs a fixed "
            "image size (height, width, channels). Use --data none."
        )
    loaded = load_images(data, size=max(shape[:2]), n=n, seed=seed, what="--data")
    images = fit_images(loaded.x, shape, "--data images")
    return images if loaded.unit else to_unit(images, loaded.integers, "--data images")


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.cli.models import load_model
    from keras_cnnvis.model import input_shape
    from keras_cnnvis.rendering import image
    from keras_cnnvis.rendering.health import report_image
    from keras_cnnvis.weights.health import filter_health

    model = load_model(args.model, args.weights, where="cnnvis health").model
    probe = None
    shape = input_shape(model)
    if args.data != "none":
        data = args.data
        if data is None:
            data = "digits" if shape is not None and shape[-1] == 1 else "shapes"
        probe = probe_images(data, tuple(shape or ()), args.n, args.seed)
    report = filter_health(model, args.layers or None, probe=probe, alpha=args.alpha)
    print(
        f"Filter health of {args.model} ({len(report)} layers"
        f"{'' if probe is None else f', {len(probe)} probe images'}):\n"
    )
    print(report.table())
    notes = sorted({n for h in report.values() for n in h.notes})
    if notes:
        print("\nNot scored: " + "; ".join(notes) + ".")
    bad = report.non_converged()
    if bad:
        print("\nNon-converged: " + ", ".join(f"{h.layer} ({h.verdict})" for h in bad))
    if args.out:
        image.save_png(args.out, report_image(model, report))
        print(f"\nReport image: {args.out}")
    return 0


def add_parser(sub) -> None:
    from keras_cnnvis.cli.models import add_model_arguments

    p = sub.add_parser(
        "health",
        help="diagnose the filters of a saved model (noise-like, dead, spectral)",
        description="Score every weight layer of a saved Keras model: filters that are "
        "still noise-like, dead or saturated units (on probe images), the spectral "
        "exponent of each weight matrix, and a verdict per layer. Drift and update ratio "
        "need the training history: use FilterHealthCallback during fit for those.",
    )
    add_model_arguments(p, weights="imagenet")
    p.add_argument(
        "--data",
        default=None,
        help="probe images: shapes, digits, a folder of class subfolders, an .npy/.npz "
        "file, or none "
        "(default: shapes for RGB models, digits for grayscale)",
    )
    p.add_argument("--n", type=int, default=64, help="probe images (default 64)")
    p.add_argument("--layers", nargs="+", help="layers to score (default: all weight layers)")
    p.add_argument("--alpha", type=float, default=0.01, help="structure-test level (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed for picking probe images (default 0)")
    p.add_argument(
        "--out",
        default="health_report.png",
        help="PNG report path (default health_report.png; '' for none)",
    )
    p.set_defaults(func=run)
