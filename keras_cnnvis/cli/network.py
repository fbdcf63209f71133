"""`cnnvis network MODEL --image FILE [--logdir DIR]`: what every layer of a saved model (or a
keras.applications name) computes for your own image, written as the Network page's records.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_image(path: str) -> np.ndarray:
    """An image file as an array `(H, W, C)` as stored (uint8 or uint16; gray gets C = 1).

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for a file that is not an image OpenCV can decode.
    """
    import cv2

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file {path!r} does not exist.")
    # np.fromfile + imdecode also copes with non-ASCII paths, which cv2.imread does not.
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim not in (2, 3):
        raise ValueError(
            f"Could not read {path!r} as an image; pass a PNG, JPEG, BMP, TIFF or WebP file."
        )
    if image.ndim == 2:
        return image[..., None]
    code = cv2.COLOR_BGRA2RGBA if image.shape[-1] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def load_probes(paths: list, model, preprocess: str) -> tuple[np.ndarray, str]:
    """The image files as the model takes them: pixels as [0, 1], resized to the model's
    input, channels matched, then preprocessed (see `keras_cnnvis.analysis.prepare`).

    Returns:
        `(images, preprocess)` with the preprocessing name resolved from `"auto"`.

    Raises:
        ValueError: for unreadable images, or images of several sizes for a model that
            takes any size.
    """
    from keras_cnnvis.analysis import fit_images, prepare
    from keras_cnnvis.model import check_image_model

    shape = tuple(check_image_model(model))
    images = []
    for path in paths:
        image = read_image(path)
        if np.issubdtype(image.dtype, np.integer):
            image = image.astype(np.float32) / float(np.iinfo(image.dtype).max)
        target = shape if shape[0] is not None else image.shape[:2] + shape[2:]
        images.append(fit_images(image[None].astype(np.float32), target, f"image {path!r}")[0])
    if len({image.shape for image in images}) > 1:
        raise ValueError(
            f"Model '{model.name}' takes images of any size and the image files differ in "
            "size; pass images of one size."
        )
    x, _, _, name = prepare(model, np.stack(images), preprocess=preprocess, n=None)
    return x, name


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.callbacks.network import write_network
    from keras_cnnvis.cli.models import check_source, load_model
    from keras_cnnvis.network import NetworkTracer
    from keras_cnnvis.summary import LogWriter

    check_source(args.model)
    for path in args.image:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Image file {path!r} does not exist.")
    if args.max_channels < 1 or args.top < 1:
        raise ValueError("--max-channels and --top must be at least 1.")
    loaded = load_model(args.model, args.weights, where="cnnvis network")
    images, preprocess = load_probes(
        args.image, loaded.model, loaded.preprocess_name(args.preprocess)
    )
    run_dir = os.path.join(args.logdir, args.run_name)
    writer = LogWriter(run_dir)
    try:
        tracer = NetworkTracer(loaded.model, images.shape[1:])
        overview = write_network(
            writer,
            tracer,
            images,
            args.step,
            mode=args.mode,
            max_channels=args.max_channels,
            top=args.top,
            class_names=args.class_names,
        )
    finally:
        writer.close()
    p = overview["probes"][0]
    names = args.class_names or []
    if p is not None:
        best = ", ".join(
            f"{names[c] if c < len(names) else c} {q:.3f}"
            for c, q in zip(p["classes"][:3], p["probabilities"][:3])
        )
        print(f"Prediction for {args.image[0]}: {best}")
    print(
        f"Traced model '{loaded.model.name}' ({len(overview['layers'])} layers, "
        f"{overview['mode']} records, preprocess {preprocess}) on {len(images)} image(s) "
        f"into {run_dir} at step {args.step}.\n"
        f"Open with:   cnnvis board {args.logdir}\nand choose the 'cnnvis' tab, page Network."
    )
    return 0


def add_parser(sub) -> None:
    from keras_cnnvis.analysis import PREPROCESS
    from keras_cnnvis.cli.models import add_model_arguments

    p = sub.add_parser(
        "network",
        help="trace your own image through a saved model for the Network page",
        description="Run one or more image files through a trained model and write what "
        "every layer computes (the Network page of the cnnvis tab: every layer's channels, "
        "and the arithmetic behind each unit), like CNN Explainer's upload.",
    )
    add_model_arguments(p, weights="imagenet")
    p.add_argument("--image", nargs="+", required=True, help="image file(s): the probes")
    p.add_argument("--logdir", default="runs/network", help="log directory (default runs/network)")
    p.add_argument("--run-name", default="cnnvis", help="run subdirectory (default cnnvis)")
    p.add_argument(
        "--preprocess",
        default="auto",
        help=f"how [0, 1] pixels become the model's input: {', '.join(PREPROCESS)} or a "
        "keras.applications name (default auto)",
    )
    p.add_argument("--class-names", nargs="+", help="class names, in output order")
    p.add_argument(
        "--mode",
        default="auto",
        choices=("auto", "full", "units"),
        help="full: every value of every layer; units: the most active channels and their "
        "peak units (default auto: full for small models)",
    )
    p.add_argument("--max-channels", type=int, default=8, help="channels per layer in units mode")
    p.add_argument("--top", type=int, default=8, help="input terms kept per unit (default 8)")
    p.add_argument("--step", type=int, default=0, help="the step written (default 0)")
    p.set_defaults(func=run)
