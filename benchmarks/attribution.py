"""Attribution speed on the reference 4-conv CNN (64x64, batch 64, CPU): each method against
the floor of one compiled pass, and against tf-keras-vis / tf-explain when installed.

Run: `python benchmarks/attribution.py [--repeats 3] [--batch 64]`. Prints seconds and ratios
measured in this one run; the targets (issue 4) are printed next to each ratio.
`benchmarks/run.py` builds its attribution table from `methods` and `peer_methods`.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from _timing import floors, paired, timed  # noqa: E402,F401  (floors: re-exported)


def smoothgrad_name(samples: int) -> str:
    return f"smoothgrad({samples})"


def ig_name(steps: int) -> str:
    return f"integrated_gradients({steps})"


def occlusion_name(patch: int, stride: int) -> str:
    return f"occlusion({patch}, stride {stride})"


def methods(
    model,
    x: np.ndarray,
    classes: np.ndarray,
    samples: int = 20,
    steps: int = 32,
    occlusion: tuple[int, int] = (8, 4),
    extended: bool = True,
) -> list[tuple[str, Callable, int, str]]:
    """Our attribution methods on one batch: `(name, fn, passes, "fwd+bwd" | "fwd")`.

    `passes` is the number of floor passes the method needs (SmoothGrad: `samples`
    forward+backward passes; occlusion: one forward pass per patch position plus the
    clean one). `extended=False` keeps the methods the peers also have plus guided
    backprop.
    """
    from keras_cnnvis import attribution as A
    from keras_cnnvis.attribution.occlusion import patch_positions

    size = x.shape[1]
    patch, stride = occlusion
    n_boxes = len(patch_positions(size, patch, stride)) ** 2
    rows = [
        ("grad_cam", lambda: A.grad_cam(model, x, classes), 1, "fwd+bwd"),
        ("saliency", lambda: A.saliency(model, x, classes), 1, "fwd+bwd"),
        (
            smoothgrad_name(samples),
            lambda: A.smoothgrad("saliency", model, x, classes, n_samples=samples),
            samples,
            "fwd+bwd",
        ),
        (
            ig_name(steps),
            lambda: A.integrated_gradients(model, x, classes, steps=steps),
            steps,
            "fwd+bwd",
        ),
        ("guided_backprop", lambda: A.guided_backprop(model, x, classes), 1, "fwd+bwd"),
        (
            occlusion_name(patch, stride),
            lambda: A.occlusion(model, x, classes, patch=patch, stride=stride),
            n_boxes + 1,
            "fwd",
        ),
    ]
    if extended:
        k = int(model.get_layer(last_conv(model)).output.shape[-1])  # Score-CAM masks
        rows += [
            ("gradient_x_input", lambda: A.gradient_x_input(model, x, classes), 1, "fwd+bwd"),
            ("deconvnet", lambda: A.deconvnet(model, x, classes), 1, "fwd+bwd"),
            ("grad_cam_plus_plus", lambda: A.grad_cam_plus_plus(model, x, classes), 1, "fwd+bwd"),
            ("layer_cam", lambda: A.layer_cam(model, x, classes), 1, "fwd+bwd"),
            ("guided_grad_cam", lambda: A.guided_grad_cam(model, x, classes), 2, "fwd+bwd"),
            ("score_cam", lambda: A.score_cam(model, x, classes), k + 1, "fwd"),
        ]
    return rows


def last_conv(model) -> str:
    """Name of the model's last Conv2D layer (the Grad-CAM layer the peers are given)."""
    import keras

    return [la.name for la in model.layers if isinstance(la, keras.layers.Conv2D)][-1]


def peer_methods(
    model,
    x: np.ndarray,
    classes: np.ndarray,
    samples: int = 20,
    steps: int = 32,
    occlusion_patch: int | None = None,
) -> dict[str, dict[str, Callable]]:
    """The same work in tf-keras-vis and tf-explain: `{library: {method name: fn}}`.

    Names match `methods`. A library that is not installed is left out. tf-explain
    explains one class index for the whole batch (the first image's); its occlusion uses
    non-overlapping patches, so it matches our `occlusion(p, stride p)` row
    (`occlusion_patch=p`). Integrated gradients of tf-explain use `steps` path points.
    """
    import warnings

    import keras

    warnings.simplefilter("ignore")  # their Keras 3 input-structure and model warnings
    keras.config.disable_interactive_logging()  # tf-explain's model.predict progress bars
    layer = last_conv(model)
    peers: dict[str, dict[str, Callable]] = {}
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(list(classes))
        gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        sal = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
        guided = Saliency(
            model, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()], clone=True
        )
        peers["tf-keras-vis"] = {
            "grad_cam": lambda: gradcam(score, x, penultimate_layer=layer),
            "saliency": lambda: sal(score, x),
            smoothgrad_name(samples): lambda: sal(
                score, x, smooth_samples=samples, smooth_noise=0.15
            ),
            "guided_backprop": lambda: guided(score, x),
        }
    except ImportError:
        pass
    try:
        from tf_explain.core.grad_cam import GradCAM
        from tf_explain.core.integrated_gradients import IntegratedGradients
        from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity
        from tf_explain.core.smoothgrad import SmoothGrad
        from tf_explain.core.vanilla_gradients import VanillaGradients

        c = int(classes[0])  # tf-explain explains one class index for the whole batch
        peers["tf-explain"] = {
            "grad_cam": lambda: GradCAM().explain((x, None), model, c, layer_name=layer),
            "saliency": lambda: VanillaGradients().explain((x, None), model, c),
            smoothgrad_name(samples): lambda: SmoothGrad().explain(
                (x, None), model, c, num_samples=samples, noise=0.15
            ),
            ig_name(steps): lambda: IntegratedGradients().explain(
                (x, None), model, c, n_steps=steps
            ),
        }
        if occlusion_patch:
            p = occlusion_patch
            peers["tf-explain"][occlusion_name(p, p)] = lambda: OcclusionSensitivity().explain(
                (x, None), model, c, patch_size=p
            )
    except ImportError:
        pass
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=20, help="SmoothGrad samples, IG steps")
    args = parser.parse_args()

    from keras_cnnvis.datasets import shapes
    from keras_cnnvis.demo import build_demo_model

    model = build_demo_model((64, 64, 3), 5, seed=0)
    x, y, _ = shapes(args.batch, size=64, seed=1)
    classes = y.astype(np.int32)
    n, s, r = args.batch, args.samples, args.repeats
    fwd, fwd_bwd = floors(model, x, classes)
    rows = methods(model, x, classes, samples=s, steps=s, occlusion=(8, 4))
    print(f"reference: 4-conv CNN 64x64, batch {n}, {os.cpu_count()} CPU threads visible")
    print(
        f"floor (best runs): compiled forward {timed(fwd, r, 3.0):.3f} s, compiled "
        f"forward+backward {timed(fwd_bwd, r, 3.0):.3f} s"
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

    print()
    peers = peer_methods(model, x, classes, samples=s, steps=s)
    for library in ("tf-keras-vis", "tf-explain"):
        if library not in peers:
            print(f"{library} not installed (pip install {library}): skipped")
            continue
        for name, fn in peers[library].items():
            report(library, name, fn, ours[name], r)


def report(library: str, name: str, fn, our_fn, repeats: int) -> None:
    """Prints a peer's best time, ours, and the median of peer / ours over adjacent runs."""
    seconds, mine, ratio = paired(fn, our_fn, 1, repeats)
    print(
        f"{library:<13}{name:<26}{seconds:>8.3f} s   ours {mine:.3f} s   "
        f"ours is {ratio:.1f}x faster"
    )


if __name__ == "__main__":
    main()
