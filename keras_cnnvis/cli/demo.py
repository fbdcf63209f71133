"""`cnnvis demo`: trains a small CNN on built-in data with the callbacks and writes logs."""

from __future__ import annotations

import argparse

from keras_cnnvis.cli.board import SAMPLING


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.demo import run_demo

    result = run_demo(
        logdir=args.logdir,
        epochs=args.epochs,
        dataset=args.dataset,
        n=args.n,
        size=args.size,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
    )
    print(
        f"\nTrained for {args.epochs} epochs in {result['seconds']:.0f} s "
        f"(validation accuracy {result['val_accuracy']:.2f}).\n"
        f"Logs: {result['logdir']}   model: {result['model_path']}\n"
        f"Open them with:   cnnvis board {result['logdir']}\n"
        f"  (or: tensorboard --logdir {result['logdir']} --samples_per_plugin {SAMPLING})\n"
        "and choose the 'cnnvis' tab."
    )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small CNN on built-in data with the callbacks and write logs",
        description="Train a small CNN with every keras-cnnvis callback and write "
        "TensorBoard logs (works offline on the built-in 'shapes' data).",
    )
    p.add_argument("--logdir", default="runs/demo", help="log directory (default runs/demo)")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument(
        "--dataset",
        default="shapes",
        help="shapes (default, offline), digits (offline), mnist, fashion_mnist, cifar10 "
        "(download) or a folder of class subfolders",
    )
    p.add_argument("--n", type=int, default=2000, help="examples to use (default 2000)")
    p.add_argument("--size", type=int, default=64, help="image size (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
