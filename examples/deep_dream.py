"""DeepDream with keras-cnnvis: amplify a low layer and a high layer of a model and compare.

Runs offline: by default it trains the small demo CNN on the built-in shapes data (about a
minute on a laptop CPU) and dreams on a scikit-image sample photo. Pass `--model vgg16` to
use ImageNet VGG16 (downloads its weights) with its own layers, e.g.
`--low block2_conv2 --high block4_conv3`.

    python examples/deep_dream.py --out docs/images/synth_dream.png
"""

from __future__ import annotations

import argparse

import numpy as np


def demo_model(path: str | None):
    """The saved model at `path`, or the demo CNN trained on shapes for 8 epochs."""
    import keras

    if path:
        return keras.models.load_model(path, compile=False)
    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, _ = datasets.shapes(1600, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(datasets.SHAPE_CLASSES), seed=0)
    train_demo_model(model, images[300:], labels[300:], epochs=8)
    return model


def main() -> None:
    from keras_cnnvis import image
    from keras_cnnvis.synthesis import deep_dream, load_image, load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=None,
        help="saved model (.keras) or keras.applications name (default: train the demo CNN)",
    )
    parser.add_argument(
        "--image", default="coffee", help="image file or sample name (default coffee)"
    )
    parser.add_argument("--size", type=int, default=160, help="image side (default 160)")
    parser.add_argument("--low", default="conv1", help="low layer (default conv1)")
    parser.add_argument("--high", default="conv4", help="high layer (default conv4)")
    parser.add_argument("--steps", type=int, default=20, help="steps per octave (default 20)")
    parser.add_argument("--step-size", type=float, default=0.004, help="(default 0.004)")
    parser.add_argument("--out", default="deep_dream.png", help="output PNG")
    args = parser.parse_args()

    if args.model and not args.model.endswith((".keras", ".h5")):
        model, preprocess = load_model(args.model)
    else:
        model, preprocess = demo_model(args.model), None
    photo = load_image(args.image, size=args.size)
    dreams = [
        deep_dream(
            model,
            photo,
            layers=layer,
            octaves=4,
            steps=args.steps,
            step_size=args.step_size,
            preprocess=preprocess,
        )
        for layer in (args.low, args.high)
    ]
    gap = np.ones((photo.shape[0], 4, 3), np.float32)
    image.save_png(args.out, np.concatenate([photo, gap, dreams[0], gap, dreams[1]], axis=1))
    print(f"wrote {args.out}: input | dream on {args.low} | dream on {args.high}")


if __name__ == "__main__":
    main()
