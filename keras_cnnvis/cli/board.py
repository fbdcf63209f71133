"""`cnnvis board LOGDIR`: starts TensorBoard with the sampling the cnnvis tab needs."""

from __future__ import annotations

import argparse
import os

# TensorBoard keeps only 10 images per series by default. "0" would keep every step in the
# loader, but the stock Images and Scalars dashboards then ask the data provider for 0
# samples and show nothing; a million steps keeps everything and serves it everywhere (the
# reservoir grows with the data, nothing is preallocated).
SAMPLING = "images=1000000,cnnvis=1000000,scalars=1000000"


def tensorboard_argv(args: argparse.Namespace) -> list[str]:
    """The TensorBoard command-line arguments for `args`."""
    argv = [
        "--logdir",
        args.logdir,
        "--samples_per_plugin",
        SAMPLING,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    return argv + [a for a in getattr(args, "extra", None) or [] if a != "--"]


def run(args: argparse.Namespace) -> int:
    """Runs TensorBoard in this process until interrupted."""
    if not os.path.isdir(args.logdir):
        raise FileNotFoundError(
            f"Log directory '{args.logdir}' does not exist; run `cnnvis demo` or pass the "
            "log_dir you gave the callbacks."
        )
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(argv=[None, *tensorboard_argv(args)])
    url = board.launch()
    print(f"TensorBoard at {url}#cnnvis (Ctrl+C to stop)", flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "board",
        help="open TensorBoard on a log directory with the cnnvis tab",
        description="Start TensorBoard with --samples_per_plugin set so every logged "
        "epoch of images and cnnvis data is kept. Other TensorBoard flags "
        "(e.g. --load_fast=false) are passed through.",
    )
    p.add_argument("logdir", help="the log directory (e.g. runs/demo)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6006, help="port (default 6006)")
    p.set_defaults(func=run, forward_unknown=True)
