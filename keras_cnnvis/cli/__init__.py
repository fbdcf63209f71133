"""The `cnnvis` command: one subcommand module each, registered in `SUBCOMMANDS`.

Each module exposes `add_parser(subparsers)`, which adds its parser and sets `func`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# TensorFlow's C++ start-up chatter hides the command's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SUBCOMMANDS = (
    "demo",
    "board",
    "synthesis",
    "health",
    "anatomy",
    "analyze",
    "network",
    "robustness",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="cnnvis",
        description="See what a convolutional network learns while it learns.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"keras_cnnvis.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cnnvis` console script; returns the exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "forward_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.extra = unknown
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"cnnvis {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
