"""`cnnvis anatomy MODEL`: the stages, stage outputs and feature map of a saved model or a
keras.applications architecture, and the layers the monitors watch by default.
"""

from __future__ import annotations

import argparse


def image_shape(model, input_size: list | None) -> tuple:
    """The `(H, W, C)` to trace `model` at: its own, or `--input-size` for a model that takes
    any size.

    Raises:
        ValueError: for a model without an image input, a variable-size model without
            `--input-size`, or an `--input-size` a fixed-size model does not take.
    """
    from keras_cnnvis.model import check_image_model

    h, w, c = check_image_model(model)
    if input_size is not None and h is not None and (h, w) != tuple(input_size):
        raise ValueError(
            f"Model '{model.name}' takes {h}x{w} images; --input-size applies to "
            "keras.applications names and to models that take any size."
        )
    if h is None or w is None:
        if input_size is None:
            raise ValueError(
                f"Model '{model.name}' takes images of any size; pass --input-size HEIGHT WIDTH."
            )
        h, w = input_size
    return int(h), int(w), c


def run(args: argparse.Namespace) -> int:
    from keras_cnnvis.callbacks.plan import anatomy_layers
    from keras_cnnvis.cli.models import load_model
    from keras_cnnvis.model.anatomy import model_anatomy

    size = tuple(args.input_size) if args.input_size else None
    loaded = load_model(args.model, args.weights, input_size=size, where="cnnvis anatomy")
    model = loaded.model
    shape = image_shape(model, size)
    anatomy = model_anatomy(model, shape)
    print(
        f"Anatomy of model '{model.name}' at {'x'.join(map(str, shape))} "
        f"({len(anatomy.nodes)} traced calls):\n"
    )
    print(anatomy.table())
    layers, kernels, feature_map = anatomy_layers(model, shape)
    print(
        f"\nCNNVisCallback watches: {', '.join(layers) or '-'}\n"
        f"kernels (filters, health): {', '.join(kernels) or '-'}\n"
        f"Grad-CAM layer: {feature_map or '-'}"
    )
    if anatomy.side_branches:
        print(f"side branches: {', '.join(anatomy.side_branches)}")
    return 0


def add_parser(sub) -> None:
    from keras_cnnvis.cli.models import add_model_arguments

    p = sub.add_parser(
        "anatomy",
        help="print a model's stages, stage outputs and feature map",
        description="Trace one image through a model and print its anatomy: the stages "
        "(runs at one resolution) with their outputs and main-path convolutions, the "
        "feature map feeding the head (the Grad-CAM layer), side branches skipped by "
        "default, and the layers CNNVisCallback watches.",
    )
    add_model_arguments(p, weights="none", input_size=True)
    p.set_defaults(func=run)
