"""Benchmark: one render-loop step vs a compiled forward+backward of the objective model.

Prints the time of one optimisation step of `Renderer` (compiled: parameterisation,
transforms, forward, backward, update, regularisers) and of a compiled `tf.function` that
only computes the objective's gradient with respect to an input image of the same size,
and their ratio (target: within 1.3x). Run: `python benchmarks/synthesis.py`.
"""

from __future__ import annotations

import argparse

import tensorflow as tf

import _timing


def timed(fn, repeats: int) -> float:
    """Best mean time of `repeats` calls, over 3 rounds after 2 warm-up calls (tracing)."""
    return _timing.timed(fn, repeats=3, warm_up=2, inner=repeats)


def step_functions(
    model,
    objective,
    shape: tuple,
    batch: int,
    param: str = "fourier",
    transforms: str | None = "default",
):
    """`(render step, compiled forward+backward)` callables for one model and objective.

    The first runs one compiled `Renderer` step (parameterisation, transforms, forward,
    backward, update, regularisers); the second only the objective's gradient with
    respect to an input image batch of the same size (the floor of one step).
    """
    from keras_cnnvis.synthesis.render import Renderer, forward

    image = tf.Variable(tf.random.uniform((batch,) + tuple(shape)))

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            value = forward(model, objective, image, image)
        return tape.gradient(value, image)

    renderer = Renderer(model, objective, shape, batch=batch, param=param, transforms=transforms)
    return (lambda: float(renderer.step_fn())), (lambda: forward_backward().numpy())


def main() -> None:
    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.synthesis import objectives as O
    from keras_cnnvis.synthesis.render import Renderer, forward

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--vgg",
        type=int,
        default=128,
        help="also time VGG16 (random weights) at this size; 0 = skip",
    )
    args = parser.parse_args()

    model = build_demo_model((args.size, args.size, 3), 5)
    objective = O.channel("conv3", 5)
    shape = (args.size, args.size, 3)
    image = tf.Variable(tf.random.uniform((args.batch,) + shape))

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            value = forward(model, objective, image, image)
        return tape.gradient(value, image)

    reference = timed(lambda: forward_backward().numpy(), args.repeats)
    print(f"demo model, {args.batch} x {args.size}x{args.size}, objective {objective.name}")
    print(f"compiled forward+backward:             {reference * 1e3:7.2f} ms")
    for param in ("pixel", "fourier"):
        for transforms in (None, "default"):
            renderer = Renderer(
                model, objective, shape, batch=args.batch, param=param, transforms=transforms
            )
            step = timed(lambda: float(renderer.step_fn()), args.repeats)
            label = f"render step ({param}, {'transforms' if transforms else 'no transforms'})"
            print(
                f"{label:38s} {step * 1e3:7.2f} ms   ratio {step / reference:4.2f}x   "
                f"(traced {renderer.step_fn.experimental_get_tracing_count()}x)"
            )

    if args.vgg:
        import keras

        vgg = keras.applications.VGG16(weights=None, include_top=False)
        objective = O.channel("block4_conv1", 5)
        shape = (args.vgg, args.vgg, 3)
        image = tf.Variable(tf.random.uniform((1,) + shape))

        @tf.function
        def vgg_forward_backward():
            with tf.GradientTape() as tape:
                value = forward(vgg, objective, image, image)
            return tape.gradient(value, image)

        reference = timed(lambda: vgg_forward_backward().numpy(), max(3, args.repeats // 10))
        print(f"\nVGG16 (random weights), 1 x {args.vgg}x{args.vgg}, objective {objective.name}")
        print(f"compiled forward+backward:             {reference * 1e3:7.2f} ms")
        renderer = Renderer(vgg, objective, shape, param="fourier", transforms="default")
        step = timed(lambda: float(renderer.step_fn()), max(3, args.repeats // 10))
        print(
            f"render step (fourier, transforms)      {step * 1e3:7.2f} ms   ratio "
            f"{step / reference:4.2f}x"
        )


if __name__ == "__main__":
    main()
