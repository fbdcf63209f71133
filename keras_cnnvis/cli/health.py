"""`cnnvis health MODEL.keras`: filter health of a saved model, as a table per layer in the
terminal and a PNG report (flagged filters outlined).
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def probe_images(data: str, shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    """`n` probe images for a model input `shape = (H, W, C)` from `data`.

    `data` is `"shapes"`, `"digits"` or a folder of class subfolders; images are float32 in
    [0, 1], resized to `H x W`, and converted between grayscale and RGB to match `C`.

    Raises:
        ValueError: for an input that is not an image, a non-square input with `shapes`, an
            unknown dataset or an unsupported channel count.
    """
    from keras_cnnvis import datasets
    from keras_cnnvis.render import image

    if len(shape) != 3 or None in shape[:2]:
        raise ValueError(
            f"The model takes inputs of shape {shape}; `cnnvis health --data` needs a fixed "
            "image size (height, width, channels). Use --data none."
        )
    h, w, c = (int(s) if s is not None else None for s in shape)
    if data == "shapes":
        if h != w:
            raise ValueError(
                f"--data shapes makes square images; the model takes {h}x{w}. Use --data "
                "FOLDER with your own images."
            )
        images, _, _ = datasets.shapes(n, size=h, seed=seed)
    elif data == "digits":
        images, _ = datasets.digits()
        images = images[np.random.default_rng(seed).permutation(len(images))[:n]]
    elif os.path.isdir(data):
        images, _, _ = datasets.image_folder(data, size=max(h, w))
        images = images[np.random.default_rng(seed).permutation(len(images))[:n]]
    else:
        raise ValueError(
            f"Unknown --data {data!r}: use shapes, digits, none or the path of a folder with "
            "one subfolder of images per class."
        )
    if images.shape[1:3] != (h, w):
        images = image.resize(images, (h, w))
        if images.ndim == 3:
            images = images[..., None]
    have = images.shape[-1]
    if c is None or have == c:
        return images.astype(np.float32)
    if have == 1 and c == 3:
        return np.repeat(images, 3, axis=-1).astype(np.float32)
    if have == 3 and c == 1:
        return images.mean(axis=-1, keepdims=True).astype(np.float32)
    raise ValueError(f"The model takes {c}-channel images; --data {data} gives {have} channels.")


def run(args: argparse.Namespace) -> int:
    import keras

    from keras_cnnvis.model import input_shape
    from keras_cnnvis.render import image
    from keras_cnnvis.render.health import report_image
    from keras_cnnvis.weights.health import filter_health

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"Model file '{args.model}' does not exist.")
    model = keras.models.load_model(args.model, compile=False)
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
    p = sub.add_parser(
        "health",
        help="diagnose the filters of a saved model (noise-like, dead, spectral)",
        description="Score every weight layer of a saved Keras model: filters that are "
        "still noise-like, dead or saturated units (on probe images), the spectral "
        "exponent of each weight matrix, and a verdict per layer. Drift and update ratio "
        "need the training history: use FilterHealthCallback during fit for those.",
    )
    p.add_argument("model", help="a saved model (.keras)")
    p.add_argument(
        "--data",
        default=None,
        help="probe images: shapes, digits, a folder of class subfolders, or none "
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
