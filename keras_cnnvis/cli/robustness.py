"""`cnnvis robustness MODEL --data DATA [--logdir DIR]`: a saved model's accuracy under the common
corruptions (Hendrycks & Dietterich 2019) and PGD, as a table in the terminal and, with
`--logdir`, the records `RobustnessCallback` writes (step 0) for the Robustness page.
"""

from __future__ import annotations

import argparse
import tempfile


def load_data(model, data: str, preprocess: str, n: int, seed: int, size=None) -> tuple:
    """The labelled images of `data` for the corruptions, and how they become model input.

    Returns:
        `(x, y, class_names, value_range, preprocess function or None, preprocess name)`:
        `x` in [0, 1] fitted to the model's input size and channels (as stored for
        `preprocess="none"`, with the range read from the pixels).

    Raises:
        ValueError: for data without labels, or anything `keras_cnnvis.analysis.prepare`
            refuses.
    """
    from keras_cnnvis.analysis import auto_preprocess, prepare, preprocess_function

    name = auto_preprocess(model) if preprocess == "auto" else preprocess
    function = preprocess_function(name)  # raises for unknown names before loading
    stored = name == "none"
    x, y, names, _ = prepare(model, data, "none" if stored else "unit", n, seed, size)
    if y is None:
        raise ValueError(
            f"--data {data!r} has no labels of the model's classes; accuracy needs them: pass "
            "a folder with one subfolder per class, an .npz with x and y, or a built-in set."
        )
    return x, y, names, None if stored else (0.0, 1.0), function, name


def _table(cb) -> str:
    table = cb.table
    width = max(len(n) for n in (*table.corruptions, "mean over corruptions"))
    head = f"{'corruption'.ljust(width)}  clean " + " ".join(f"sev {s}" for s in table.severities)
    lines = [head, "-" * len(head)]
    rows = list(zip(table.corruptions, table.accuracy)) + [
        ("mean over corruptions", table.by_severity())
    ]
    for name, row in rows:
        values = " ".join(f"{a:5.3f}" for a in row)
        lines.append(f"{name.ljust(width)}  {table.clean:5.3f} {values}")
    lines.append(f"\nClean accuracy {table.clean:.3f}, mean corrupted accuracy {table.mean:.3f}.")
    if cb.adversarial is not None:
        adv = cb.adversarial
        pairs = ", ".join(
            f"eps {e * 255:g}/255: {a:.3f}" for e, a in zip(adv["epsilons"], adv["accuracy"])
        )
        lines.append(f"PGD ({adv['steps']} steps, {adv['count']} images) accuracy: {pairs}.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.analysis import check_source as check_data
    from keras_cnnvis.callbacks.robustness import RobustnessCallback
    from keras_cnnvis.cli.models import check_source, load_model
    from keras_cnnvis.rendering import image
    from keras_cnnvis.rendering.robustness import render_heatmap

    check_source(args.model)
    check_data(args.data, "--data")
    if args.n < 1:
        raise ValueError(f"--n must be at least 1; got {args.n}.")
    size = tuple(args.input_size) if args.input_size else None
    loaded = load_model(args.model, args.weights, input_size=size, where="cnnvis robustness")
    preprocess = loaded.preprocess_name(args.preprocess)
    x, y, names, value_range, function, used = load_data(
        loaded.model, args.data, preprocess, args.n, args.seed, None if loaded.application else size
    )
    named = len(args.corruptions) == 1 and args.corruptions[0] in ("all", "benchmark")
    scratch = None if args.logdir else tempfile.TemporaryDirectory(prefix="cnnvis_robustness_")
    cb = RobustnessCallback(
        args.logdir or scratch.name,
        (x, y),
        corruptions=args.corruptions[0] if named else args.corruptions,
        severities=args.severities,
        n_examples=len(x),
        epsilons=[e / 255 for e in args.epsilons],
        n_adversarial=args.n_adversarial,
        pgd_steps=args.pgd_steps,
        n_probes=args.n_probes if args.logdir else 0,
        class_names=args.class_names or names,
        value_range=value_range,
        preprocess=function,
        batch_size=args.batch_size,
        seed=args.seed,
        on_error="raise",
    )
    cb.set_model(loaded.model)
    cb.on_train_begin()
    try:
        cb.on_epoch_begin(0)  # the record before training: step 0
    finally:
        cb.on_train_end()
        if scratch is not None:
            scratch.cleanup()
    print(
        f"Robustness of model '{loaded.model.name}' on {len(cb.x)} images of {args.data} "
        f"(preprocess {used}):\n"
    )
    print(_table(cb))
    if args.out:
        t = cb.table
        image.save_png(args.out, render_heatmap(t.accuracy, t.corruptions, t.severities, t.clean))
        print(f"\nHeatmap: {args.out}")
    if args.logdir:
        print(f"\nRecords: {cb.run_dir}. Open with:   cnnvis board {args.logdir}")
    return 0


def add_parser(sub) -> None:
    from keras_cnnvis.analysis import PREPROCESS
    from keras_cnnvis.callbacks.robustness import DEFAULT_CORRUPTIONS
    from keras_cnnvis.cli.models import add_model_arguments

    p = sub.add_parser(
        "robustness",
        help="accuracy of a saved model under common corruptions and PGD attacks",
        description="Measure a trained classifier's accuracy under the common corruptions "
        "of Hendrycks & Dietterich (2019) at several severities and under PGD attacks, on "
        "labelled images; print the table and, with --logdir, write the records of "
        "RobustnessCallback (step 0) for the cnnvis tab's Robustness page.",
    )
    add_model_arguments(p, weights="imagenet", input_size=True)
    p.add_argument(
        "--data",
        required=True,
        help="labelled images: a folder with one subfolder per class, an .npz file (x, y, "
        "optional class_names) or a built-in set (shapes, digits, mnist, fashion_mnist, "
        "cifar10)",
    )
    p.add_argument("--logdir", default=None, help="write the records into this log directory")
    p.add_argument(
        "--corruptions",
        nargs="+",
        default=list(DEFAULT_CORRUPTIONS),
        help="corruption names, or 'all' (19) or 'benchmark' (15) (default: "
        f"{' '.join(DEFAULT_CORRUPTIONS)})",
    )
    p.add_argument(
        "--severities", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="(default 1 2 3 4 5)"
    )
    p.add_argument("--n", type=int, default=500, help="images, classes in turn (default 500)")
    p.add_argument(
        "--epsilons",
        nargs="*",
        type=float,
        default=[2.0, 8.0],
        help="PGD strengths in 1/255 steps; none turns the attack off (default 2 8)",
    )
    p.add_argument("--n-adversarial", type=int, default=100, help="images attacked (default 100)")
    p.add_argument("--pgd-steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument("--n-probes", type=int, default=4, help="corrupted examples logged (default 4)")
    p.add_argument(
        "--preprocess",
        default="auto",
        help=f"how [0, 1] images become the model's input: {', '.join(PREPROCESS[1:])} or a "
        "keras.applications name (default auto: see cnnvis analyze --help)",
    )
    p.add_argument("--class-names", nargs="+", help="class names (default: from the data)")
    p.add_argument("--batch-size", type=int, default=64, help="images per pass (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of images and noise (default 0)")
    p.add_argument("--out", default="", help="also save the heatmap as this PNG")
    p.set_defaults(func=run)
