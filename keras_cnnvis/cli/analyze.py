"""`cnnvis analyze MODEL --data DATA --logdir DIR`: every monitor once on a saved model (or a
keras.applications name), written as the records `CNNVisCallback` writes at step 0.
"""

from __future__ import annotations

import argparse


def _check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be told without loading anything (before any work)."""
    from keras_cnnvis.analysis import PREPROCESS, check_source, preprocess_function
    from keras_cnnvis.callbacks.monitors import REGISTRY
    from keras_cnnvis.cli.models import check_source as check_model

    check_model(args.model)
    check_source(args.data, "--data")
    if args.preprocess not in PREPROCESS:
        preprocess_function(args.preprocess)  # raises for an unknown name
    unknown = sorted((set(args.include or ()) | set(args.exclude or ())) - set(REGISTRY))
    if unknown:
        raise ValueError(f"Unknown monitors {unknown}; choose from {', '.join(REGISTRY)}.")
    if args.n < 1:
        raise ValueError(f"--n must be at least 1; got {args.n}.")


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.analysis import analyze
    from keras_cnnvis.cli.board import SAMPLING
    from keras_cnnvis.cli.models import load_model

    _check_arguments(args)
    size = tuple(args.input_size) if args.input_size else None
    loaded = load_model(args.model, args.weights, input_size=size, where="cnnvis analyze")
    preprocess = loaded.preprocess_name(args.preprocess)
    result = analyze(
        loaded.model,
        args.data,
        args.logdir,
        preprocess=preprocess,
        class_names=args.class_names,
        n=args.n,
        seed=args.seed,
        size=None if loaded.application else size,
        layers=args.layers,
        include=args.include,
        exclude=args.exclude or (),
        n_probes=args.n_probes,
        progress=not args.quiet,
    )
    print(
        f"\nAnalysed model '{loaded.model.name}' on {result.n_images} images "
        f"(preprocess {result.preprocess}) into {result.run_dir}:"
    )
    width = max(len(name) for name in [*result.seconds, *result.skipped, *result.failed, ""])
    for name, seconds in result.seconds.items():
        print(f"  {name.ljust(width)}  {seconds:7.2f} s")
    for name, reason in result.skipped.items():
        print(f"  {name.ljust(width)}  skipped: {reason}")
    for name, error in result.failed.items():
        print(f"  {name.ljust(width)}  FAILED: {error}")
    print(
        f"Open with:   cnnvis board {args.logdir}\n"
        f"  (or: tensorboard --logdir {args.logdir} --samples_per_plugin {SAMPLING})\n"
        "and choose the 'cnnvis' tab."
    )
    return 1 if result.failed else 0


def add_parser(sub) -> None:
    from keras_cnnvis.analysis import PREPROCESS
    from keras_cnnvis.cli.models import add_model_arguments

    p = sub.add_parser(
        "analyze",
        help="run every monitor once on a saved model and write TensorBoard logs",
        description="Run every keras-cnnvis monitor once on a trained model (filters, "
        "health, activations, Grad-CAM, confusion matrix, saliency, occlusion, patches, "
        "embeddings, neighbours, class visualisations) and write the records "
        "CNNVisCallback writes at step 0, for `cnnvis board`.",
    )
    add_model_arguments(p, weights="imagenet", input_size=True)
    p.add_argument(
        "--data",
        required=True,
        help="a folder with one subfolder of images per class, an .npy file of images, an "
        ".npz file (x, optional y and class_names), or a built-in set (shapes, digits, "
        "mnist, fashion_mnist, cifar10)",
    )
    p.add_argument("--logdir", required=True, help="the log directory to write")
    p.add_argument(
        "--preprocess",
        default="auto",
        help=f"how [0, 1] images become the model's input: {', '.join(PREPROCESS[1:])} or a "
        "keras.applications name (its preprocess_input). none: the data as stored; unit: "
        "[0, 1]; pixels: [0, 255]; symmetric: [-1, 1]. Default auto: the application's "
        "own for an application name, pixels for a model with a Rescaling layer at its "
        "input, else unit. Folders and built-in sets load as [0, 1]; integer or 0..255 "
        "arrays are divided by 255.",
    )
    p.add_argument("--n", type=int, default=500, help="images to use at most (default 500)")
    p.add_argument("--n-probes", type=int, default=8, help="probe images (default 8)")
    p.add_argument("--layers", nargs="+", help="layers to watch (default: the anatomy's)")
    p.add_argument("--include", nargs="+", help="only these monitors")
    p.add_argument("--exclude", nargs="+", help="leave these monitors out")
    p.add_argument("--class-names", nargs="+", help="class names (default: from the data)")
    p.add_argument("--seed", type=int, default=0, help="seed for picking images (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
