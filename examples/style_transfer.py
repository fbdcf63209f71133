"""Neural style transfer with keras-cnnvis (Gatys et al. 2016) on VGG16.

Uses ImageNet VGG16 when its weights can be downloaded; offline (or with `--weights none`)
it uses VGG16 with random weights, which still transfers colours and textures (random
convolution features capture texture statistics) but less faithfully than trained ones.

    python examples/style_transfer.py --content chelsea --style colorwheel --out style.png
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from keras_cnnvis import image
    from keras_cnnvis.synthesis import application, load_image, style_transfer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--content", default="chelsea", help="image file or sample (default chelsea)"
    )
    parser.add_argument(
        "--style", default="colorwheel", help="image file or sample (default colorwheel)"
    )
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--weights", default="imagenet", help="imagenet (default) or none")
    parser.add_argument("--style-weight", type=float, default=10.0, help="(default 10)")
    parser.add_argument("--steps", type=int, default=120, help="optimisation steps (default 120)")
    parser.add_argument("--out", default="style_transfer.png", help="output PNG")
    args = parser.parse_args()

    try:
        model, preprocess = application("vgg16", weights=args.weights)
        weights = "random" if args.weights.lower() in ("none", "random") else args.weights
    except ValueError as error:
        print(f"{error}\nFalling back to VGG16 with random weights.")
        model, preprocess = application("vgg16", weights=None)
        weights = "random"
    content = load_image(args.content, size=args.size)
    style = load_image(args.style, size=args.size)
    out = style_transfer(
        model,
        content,
        style,
        style_weight=args.style_weight,
        steps=args.steps,
        preprocess=preprocess,
        progress=True,
    )
    gap = np.ones((content.shape[0], 4, 3), np.float32)
    image.save_png(args.out, np.concatenate([content, gap, style, gap, out], axis=1))
    print(f"wrote {args.out}: content | style | result (VGG16, {weights} weights)")


if __name__ == "__main__":
    main()
