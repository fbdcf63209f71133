"""Attribution speed on the reference 4-conv CNN (64x64, batch 64, CPU): each method against
the floor of one compiled pass, and against tf-keras-vis / tf-explain when installed.

Run: `python benchmarks/attribution.py [--repeats 3] [--batch 64]`. Prints seconds and ratios
measured in this one run; the targets (issue 4) are printed next to each ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def timed(fn, repeats: int, budget: float = 3.0) -> float:
    """Best wall time of `fn()` after one warm-up run (tracing), over at least `repeats`
    runs and `budget` seconds: the minimum, because other processes only ever add time."""
    fn()
    times: list[float] = []
    while len(times) < repeats or sum(times) < budget:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def paired(fn, reference, count: int, repeats: int, budget: float = 3.0):
    """Times `fn` against `count` x `reference`, each run right after a reference run.

    The machine is shared and its load changes from second to second; the ratio of two
    adjacent runs cancels most of that. Returns `(best seconds of fn, best seconds of
    reference, median of fn / (count x reference))`.
    """
    fn()
    reference()
    times, refs, ratios = [], [], []
    while len(times) < repeats or sum(times) < budget:
        start = time.perf_counter()
        reference()
        refs.append(time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        ratios.append(times[-1] / (count * refs[-1]))
    return float(np.min(times)), float(np.min(refs)), float(np.median(ratios))


def floors(model, x, classes):
    """Seconds of one compiled forward pass and one compiled forward+backward pass."""
    forward = tf.function(lambda t: model(t, training=False))

    @tf.function
    def forward_backward(t, c):
        with tf.GradientTape() as tape:
            tape.watch(t)
            score = tf.gather(model(t, training=False), c, batch_dims=1)
        return tape.gradient(score, t)

    xt, ct = tf.constant(x), tf.constant(classes)
    return (
        lambda: forward(xt).numpy(),
        lambda: forward_backward(xt, ct).numpy(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=20, help="SmoothGrad samples, IG steps")
    args = parser.parse_args()

    from keras_cnnvis import attribution as A
    from keras_cnnvis.attribution.occlusion import patch_positions
    from keras_cnnvis.datasets import shapes
    from keras_cnnvis.demo import build_demo_model

    model = build_demo_model((64, 64, 3), 5, seed=0)
    x, y, _ = shapes(args.batch, size=64, seed=1)
    classes = y.astype(np.int32)
    n, s, r = args.batch, args.samples, args.repeats
    fwd, fwd_bwd = floors(model, x, classes)
    n_boxes = len(patch_positions(64, 8, 4)) ** 2
    k = 64  # conv4 channels: Score-CAM masks
    rows = [
        ("saliency", lambda: A.saliency(model, x, classes), 1, "fwd+bwd"),
        ("gradient_x_input", lambda: A.gradient_x_input(model, x, classes), 1, "fwd+bwd"),
        ("guided_backprop", lambda: A.guided_backprop(model, x, classes), 1, "fwd+bwd"),
        ("deconvnet", lambda: A.deconvnet(model, x, classes), 1, "fwd+bwd"),
        ("grad_cam", lambda: A.grad_cam(model, x, classes), 1, "fwd+bwd"),
        ("grad_cam_plus_plus", lambda: A.grad_cam_plus_plus(model, x, classes), 1, "fwd+bwd"),
        ("layer_cam", lambda: A.layer_cam(model, x, classes), 1, "fwd+bwd"),
        ("guided_grad_cam", lambda: A.guided_grad_cam(model, x, classes), 2, "fwd+bwd"),
        (
            f"smoothgrad({s})",
            lambda: A.smoothgrad("saliency", model, x, classes, n_samples=s),
            s,
            "fwd+bwd",
        ),
        (
            f"integrated_gradients({s})",
            lambda: A.integrated_gradients(model, x, classes, steps=s),
            s,
            "fwd+bwd",
        ),
        (
            "occlusion(8, stride 4)",
            lambda: A.occlusion(model, x, classes, patch=8, stride=4),
            n_boxes + 1,
            "fwd",
        ),
        ("score_cam", lambda: A.score_cam(model, x, classes), k + 1, "fwd"),
    ]
    print(f"reference: 4-conv CNN 64x64, batch {n}, {os.cpu_count()} CPU threads visible")
    print(
        f"floor (best runs): compiled forward {timed(fwd, r):.3f} s, compiled "
        f"forward+backward {timed(fwd_bwd, r):.3f} s"
    )
    print("ratio = median over runs of seconds / (count x the floor run just before)\n")
    print(f"{'method':<28}{'seconds':>9}{'floor':>14}{'ratio':>8}{'target':>8}")
    ours = {}
    for name, fn, count, kind in rows:
        floor = fwd_bwd if kind == "fwd+bwd" else fwd
        seconds, _, ratio = paired(fn, floor, count, r)
        ours[name] = fn
        flag = "ok" if ratio <= 1.5 else "SLOW"
        print(f"{name:<28}{seconds:>9.3f}{f'{count} {kind}':>14}{ratio:>8.2f}{'<=1.5':>8} {flag}")

    peers(model, x, classes, s, r, ours)


def peers(model, x, classes, s, r, ours) -> None:
    """Times tf-keras-vis and tf-explain on the same batch, if they are installed, each
    run right after one of ours (`ours` maps a method name to our function)."""
    import warnings

    warnings.simplefilter("ignore")  # their Keras 3 input-structure and model warnings
    print()
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(list(classes))
        gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        sal = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
        compare = [
            ("grad_cam", lambda: gradcam(score, x, penultimate_layer="conv4")),
            ("saliency", lambda: sal(score, x)),
            (f"smoothgrad({s})", lambda: sal(score, x, smooth_samples=s, smooth_noise=0.15)),
        ]
        for name, fn in compare:
            report("tf-keras-vis", name, fn, ours[name], r)
    except ImportError:
        print("tf-keras-vis not installed (pip install tf-keras-vis): skipped")
    try:
        from tf_explain.core.grad_cam import GradCAM
        from tf_explain.core.smoothgrad import SmoothGrad
        from tf_explain.core.vanilla_gradients import VanillaGradients

        c = int(classes[0])  # tf-explain explains one class index for the whole batch
        compare = [
            ("grad_cam", lambda: GradCAM().explain((x, None), model, c, layer_name="conv4")),
            ("saliency", lambda: VanillaGradients().explain((x, None), model, c)),
            (
                f"smoothgrad({s})",
                lambda: SmoothGrad().explain((x, None), model, c, num_samples=s, noise=0.15),
            ),
        ]
        for name, fn in compare:
            report("tf-explain", name, fn, ours[name], r)
    except ImportError:
        print("tf-explain not installed (pip install tf-explain): skipped")


def report(library: str, name: str, fn, our_fn, repeats: int) -> None:
    """Prints a peer's best time, ours, and the median of peer / ours over adjacent runs."""
    seconds, mine, ratio = paired(fn, our_fn, 1, repeats)
    print(
        f"{library:<13}{name:<18}{seconds:>8.3f} s   ours {mine:.3f} s   "
        f"ours is {ratio:.1f}x faster"
    )


if __name__ == "__main__":
    main()
