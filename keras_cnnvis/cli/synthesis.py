"""`cnnvis maximize|dream|invert|texture|style|adversarial`: the synthesis recipes on a saved
model or a keras.applications model, with image files or built-in samples, writing PNGs.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_MODEL = "vgg16"
SAMPLES_HELP = "astronaut, coffee, chelsea, rocket, camera, brick, grass, gravel, colorwheel"


# -- shared helpers --------------------------------------------------------------------------
def _fraction(text: str) -> float:
    """Parses `0.03` or `8/255`."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from error


def _load(args, include_top: bool = False):
    from keras_cnnvis.cli.models import load_model

    loaded = load_model(args.model, args.weights, include_top, where=f"cnnvis {args.command}")
    return loaded.model, loaded.preprocess


def _side(args, model) -> int | tuple:
    """The working image size: --size, else the model's fixed size, else 128."""
    from keras_cnnvis.model import check_image_model

    if args.size:
        return int(args.size)
    shape = check_image_model(model)
    if shape[0] is not None and shape[1] is not None:
        # a square input: centre-crop photos to a square rather than squash them
        return int(shape[0]) if shape[0] == shape[1] else (int(shape[0]), int(shape[1]))
    return 128


def _image(source: str, size, model):
    from keras_cnnvis.model import check_image_model
    from keras_cnnvis.synthesis.samples import load_image

    channels = check_image_model(model)[2] or 3
    return load_image(source, size=size, channels=int(channels))


def _save(args, name: str, img) -> str:
    from keras_cnnvis import image as image_lib

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    image_lib.save_png(path, img)
    print(f"wrote {path}")
    return path


def _safe(name) -> str:
    return str(name).replace("/", "_")


def _layer_weights(items: list[str] | None):
    if not items:
        return None
    out = {}
    for item in items:
        name, _, weight = item.partition("=")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError as error:
            raise ValueError(f"Layer weights are NAME or NAME=WEIGHT; got {item!r}.") from error
    return out


def _run_options(args, preprocess) -> dict:
    """The keyword arguments every synthesis run takes from the command line."""
    return {
        "steps": args.steps,
        "preprocess": preprocess,
        "seed": args.seed,
        "progress": not args.quiet,
    }


# -- subcommands -----------------------------------------------------------------------------
def run_maximize(args) -> int:
    from keras_cnnvis.synthesis.maximize import visualize_class, visualize_filter

    if (args.channel is None) == (args.classes is None):
        raise ValueError("Give either --layer with --channel, or --class.")
    model, preprocess = _load(args, include_top=args.classes is not None)
    size = _side(args, model)
    common = dict(size=size, param=args.param, **_run_options(args, preprocess))
    if args.classes is not None:
        images = visualize_class(model, args.classes, **common)
        names = [f"class_{c}.png" for c in args.classes]
    else:
        if not args.layer:
            raise ValueError("--channel needs --layer (a layer name, e.g. conv3 or block4_conv1).")
        images = visualize_filter(model, args.layer, args.channel, **common)
        names = [f"{_safe(args.layer)}_{c}.png" for c in args.channel]
    for name, img in zip(names, images):
        _save(args, name, img)
    return 0


def run_dream(args) -> int:
    from keras_cnnvis.synthesis.dream import deep_dream

    model, preprocess = _load(args)
    img = _image(args.image, _side(args, model), model)
    layers = _layer_weights(args.layers) or "last_conv"
    out = deep_dream(
        model,
        img,
        layers=layers,
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        step_size=args.step_size,
        **_run_options(args, preprocess),
    )
    _save(args, "dream.png", out)
    return 0


def run_invert(args) -> int:
    from keras_cnnvis.synthesis.invert import invert_features, psnr

    model, preprocess = _load(args)
    img = _image(args.image, _side(args, model), model)
    out = invert_features(
        model,
        img,
        args.layer,
        param=args.param,
        tv_weight=args.tv_weight,
        **_run_options(args, preprocess),
    )
    print(f"PSNR of the reconstruction: {psnr(out, img):.1f} dB")
    _save(args, f"invert_{_safe(args.layer)}.png", out)
    return 0


def run_texture(args) -> int:
    from keras_cnnvis.synthesis.style import synthesize_texture

    model, preprocess = _load(args)
    tex = _image(args.image, _side(args, model), model)
    out = synthesize_texture(
        model,
        tex,
        layers=args.layers,
        size=args.out_size,
        param=args.param,
        **_run_options(args, preprocess),
    )
    _save(args, "texture.png", out)
    return 0


def run_style(args) -> int:
    from keras_cnnvis.synthesis.style import style_transfer

    model, preprocess = _load(args)
    side = _side(args, model)
    content = _image(args.content, side, model)
    style = _image(args.style, side, model)
    out = style_transfer(
        model,
        content,
        style,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        **_run_options(args, preprocess),
    )
    _save(args, "style.png", out)
    return 0


def run_adversarial(args) -> int:
    import numpy as np

    from keras_cnnvis.synthesis.adversarial import adversarial_example, fooling_image, predict

    model, preprocess = _load(args, include_top=True)
    if args.fool is not None:
        img = fooling_image(
            model, args.fool, steps=args.steps, preprocess=preprocess, seed=args.seed
        )
        p = predict(model, img[None], preprocess)[0]
        print(f"fooling image: class {args.fool} with probability {p[args.fool]:.3f}")
        _save(args, f"fooling_{args.fool}.png", img)
        return 0
    img = _image(args.image, _side(args, model), model)
    adv = adversarial_example(
        model,
        img,
        target=args.target,
        method=args.method,
        epsilon=args.epsilon,
        steps=args.steps,
        preprocess=preprocess,
        seed=args.seed,
    )
    before = predict(model, img[None], preprocess)[0]
    after = predict(model, adv[None], preprocess)[0]
    print(
        f"prediction: class {before.argmax()} ({before.max():.3f}) -> class "
        f"{after.argmax()} ({after.max():.3f}); max pixel change "
        f"{np.abs(adv - img).max() * 255:.1f}/255"
    )
    _save(args, "adversarial.png", adv)
    from keras_cnnvis.image import normalize

    _save(args, "perturbation.png", normalize(adv - img, mode="symmetric"))
    return 0


# -- parsers ---------------------------------------------------------------------------------
def _common(p, steps: int) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a saved model (.keras) or a keras.applications name such as vgg16, "
        "vgg19, resnet50 (default vgg16; ImageNet weights download when online; "
        "offline pass a saved model, e.g. the model.keras of `cnnvis demo`, or "
        "--weights none)",
    )
    p.add_argument(
        "--weights",
        default="imagenet",
        help="weights for keras.applications models: imagenet (default) or none",
    )
    p.add_argument("--out", default="synthesis_out", help="output folder (default synthesis_out)")
    p.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (default {steps})")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="working image side in pixels (default: the model's input size, or 128)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub) -> None:
    img_help = f"an image file or a built-in sample ({SAMPLES_HELP})"

    p = sub.add_parser(
        "maximize",
        help="activation maximisation of channels or classes",
        description="Render the images that most excite channels of a layer "
        "(--layer, --channel) or classes (--class).",
    )
    _common(p, 128)
    p.add_argument("--layer", help="layer name (e.g. conv3, block4_conv1, last_conv)")
    p.add_argument("--channel", type=int, nargs="+", help="channel indices")
    p.add_argument("--class", dest="classes", type=int, nargs="+", help="class indices")
    p.add_argument(
        "--param",
        default="fourier",
        choices=["fourier", "pixel"],
        help="image parameterisation (default fourier)",
    )
    p.set_defaults(func=run_maximize)

    p = sub.add_parser(
        "dream",
        help="DeepDream an image",
        description="Amplify what chosen layers see in an image (DeepDream).",
    )
    _common(p, 20)
    p.add_argument("--image", default="astronaut", help=img_help + " (default astronaut)")
    p.add_argument(
        "--layers",
        nargs="+",
        metavar="NAME[=WEIGHT]",
        help="layers to amplify, optionally weighted (default last_conv)",
    )
    p.add_argument("--octaves", type=int, default=3, help="scales (default 3)")
    p.add_argument("--octave-scale", type=float, default=1.4, help="scale ratio (default 1.4)")
    p.add_argument("--step-size", type=float, default=0.01, help="step size (default 0.01)")
    p.set_defaults(func=run_dream)

    p = sub.add_parser(
        "invert",
        help="reconstruct an image from a layer's features",
        description="Feature inversion (Mahendran & Vedaldi 2015).",
    )
    _common(p, 300)
    p.add_argument("--image", default="astronaut", help=img_help + " (default astronaut)")
    p.add_argument("--layer", required=True, help="the layer whose features are matched")
    p.add_argument(
        "--param",
        default="pixel",
        choices=["fourier", "pixel"],
        help="image parameterisation (default pixel)",
    )
    p.add_argument("--tv-weight", type=float, default=0.05, help="total variation weight")
    p.set_defaults(func=run_invert)

    p = sub.add_parser(
        "texture",
        help="synthesise a texture (Gatys et al. 2015)",
        description="Synthesise a new image with the Gram statistics of a texture.",
    )
    _common(p, 200)
    p.add_argument("--image", default="gravel", help=img_help + " (default gravel)")
    p.add_argument("--layers", nargs="+", help="layers whose Gram matrices are matched")
    p.add_argument("--out-size", type=int, default=None, help="output side (default: input's)")
    p.add_argument(
        "--param",
        default="fourier",
        choices=["fourier", "pixel"],
        help="image parameterisation (default fourier)",
    )
    p.set_defaults(func=run_texture)

    p = sub.add_parser(
        "style",
        help="neural style transfer (Gatys et al. 2016)",
        description="Paint a content image in the textures of a style image.",
    )
    _common(p, 200)
    p.add_argument("--content", default="chelsea", help=img_help + " (default chelsea)")
    p.add_argument("--style", default="gravel", help=img_help + " (default gravel)")
    p.add_argument("--content-weight", type=float, default=1.0, help="(default 1)")
    p.add_argument("--style-weight", type=float, default=10.0, help="(default 10)")
    p.add_argument("--tv-weight", type=float, default=1.0, help="(default 1)")
    p.set_defaults(func=run_style)

    p = sub.add_parser(
        "adversarial",
        help="adversarial examples and fooling images",
        description="Perturb an image to change the prediction (FGSM/PGD), or "
        "turn noise into a confident prediction (--fool CLASS).",
    )
    _common(p, 10)
    p.add_argument("--image", default="chelsea", help=img_help + " (default chelsea)")
    p.add_argument("--method", default="pgd", choices=["fgsm", "pgd"], help="(default pgd)")
    p.add_argument(
        "--epsilon",
        type=_fraction,
        default=8 / 255,
        help="largest pixel change, e.g. 0.03 or 8/255 (default 8/255)",
    )
    p.add_argument("--target", type=int, default=None, help="class to reach (default: any other)")
    p.add_argument(
        "--fool",
        type=int,
        default=None,
        metavar="CLASS",
        help="make a fooling image for this class instead",
    )
    p.set_defaults(func=run_adversarial)
