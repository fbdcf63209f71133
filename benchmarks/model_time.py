"""Model time per record of the monitors' core functions on the demo setup, before and after a
change, next to each piece's floor (the minimal compiled passes it needs).

Run: `python benchmarks/model_time.py --before <git rev> [--rounds 7]`
     `python benchmarks/model_time.py --sweep` (forward time per batch size, demo CNN)

Setup as `cnnvis demo` (random weights: costs do not depend on them): the demo CNN at 64x64,
400 validation `shapes` images, 8 class-balanced probes. Each piece calls the core functions
the way its callback does at `CNNVisCallback`'s defaults (robustness: 200 images, 5
corruptions x 3 severities, PGD at 2/255 and 8/255 on 64 images with 5 steps, a kept
predictor built as `RobustnessCallback` builds it (batch 64); occlusion 8x8 patches at
stride 4; saliency + guided backprop + integrated gradients (32 steps); Grad-CAM + LayerCAM
with `faithfulness=True`; patches: 4 stage outputs, 8 channels, k=9, batches of 64; class
visualisation: 5 classes, 32 steps; the embedding's forward pass). The old code is
`git archive <rev> keras_cnnvis`, renamed `keras_cnnvis_before` in a temporary folder, so
both versions run in this one process on the same model and data: every round runs each
piece before, after and its floor, in rotating order, after one warm-up call each (tracing,
the first corruption cache). A ratio is the median over rounds of after / before of the
same round. The floor: plain `tf.function`s with outputs fetched to numpy, forward passes at
batch 256 and forward+backward passes at the piece's own batch; patches: the model truncated
at the deepest mined layer, each channel's maximum, batches of 64 as the callback streams;
class visualisation: 32 forward+backward passes of the 5 images without the Fourier image
and the transforms, which are part of the method.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _timing import interleaved, load_average  # noqa: E402


def demo_setup() -> dict:
    from keras_cnnvis import datasets, inputs
    from keras_cnnvis.demo import build_demo_model

    images, labels, names = datasets.load("shapes", n=2000, size=64, seed=0)
    model = build_demo_model((64, 64, 3), len(names), seed=0)
    x_val, y_val = images[:400], labels[:400]
    pick = inputs.balanced_indices(y_val, 8, sort=False)
    subset = inputs.balanced_indices(y_val, 200, seed=0)
    attacked = inputs.balanced_indices(y_val[subset], 64, seed=0)
    return dict(
        model=model,
        x_val=x_val,
        y_val=y_val,
        probe=x_val[pick],
        probe_y=y_val[pick].astype(np.int64),
        x_sub=x_val[subset],
        y_sub=y_val[subset],
        attacked=attacked,
    )


def pieces(d: dict, package: str = "keras_cnnvis", predictor_batch: int | None = 64) -> dict:
    """`{name: fn}` of one record's model work per monitor (see the module docstring), with
    the functions of `package` (`keras_cnnvis`, or the old code's `keras_cnnvis_before`)."""
    from importlib import import_module

    def load(module):
        return import_module(f"{package}.{module}")

    A = load("attribution")
    faithfulness_scores = load("attribution.faithfulness").faithfulness_scores
    FAITHFULNESS = load("callbacks.attribution_base").FAITHFULNESS
    anatomy_layers = load("callbacks.plan").anatomy_layers
    DEFAULT_CORRUPTIONS = load("callbacks.robustness").DEFAULT_CORRUPTIONS
    LayerFeatures = load("features.embeddings").LayerFeatures
    PatchMiner = load("patches").PatchMiner
    R = load("robustness")
    ClassPredictor, adversarial_accuracy = R.ClassPredictor, R.adversarial_accuracy
    corruption_accuracy = R.corruption_accuracy
    obj, Renderer = load("synthesis.objectives"), load("synthesis.render").Renderer

    model, probe, py = d["model"], d["probe"], d["probe_y"]
    xs, ys, adv = d["x_sub"], d["y_sub"], d["attacked"]
    predictor = ClassPredictor(model, predictor_batch, (0.0, 1.0), None)
    common = dict(batch_size=64, seed=0, value_range=(0.0, 1.0), predictor=predictor)
    layers, _, feature_map = anatomy_layers(model, (64, 64, 3))

    def corruptions():
        corruption_accuracy(model, xs, ys, DEFAULT_CORRUPTIONS, (1, 3, 5), **common)

    def pgd():
        adversarial_accuracy(model, xs[adv], ys[adv], (0.0, 2 / 255, 8 / 255), steps=5, **common)

    def saliency():
        A.saliency(model, probe, py)
        A.guided_backprop(model, probe, py)
        A.integrated_gradients(model, probe, py)

    def grad_cam():
        maps = {
            "grad_cam": A.grad_cam(model, probe, py, layer=feature_map),
            "layer_cam": A.layer_cam(model, probe, py, layer=feature_map),
        }
        faithfulness_scores(model, probe, maps, py, **FAITHFULNESS)

    miner = PatchMiner(model, layers, 8, 9, 0.5, (64, 64, 3), "auto")

    def patches(batch=64):
        miner.reset()
        for start in range(0, len(d["x_val"]), batch):
            miner.update(d["x_val"][start : start + batch])
        miner.results()

    classes = list(range(5))
    renderer = Renderer(
        model, sum(obj.class_logit(c, batch=i) for i, c in enumerate(classes)), (64, 64, 3), 5
    )

    def render():
        renderer.reset()
        renderer.run(32)

    features = LayerFeatures(model)
    return {
        "robustness": lambda: (corruptions(), pgd()),
        "robustness_corruptions": corruptions,
        "robustness_pgd": pgd,
        "occlusion": lambda: A.occlusion(model, probe, py, patch=8, stride=4, batch_size=256),
        "saliency": saliency,
        "integrated_gradients": lambda: A.integrated_gradients(model, probe, py),
        "grad_cam_faithfulness": grad_cam,
        "patches": patches,
        "patches (batches of 256)": lambda: patches(256),
        "classes": render,
        "embedding_forward": lambda: features(d["x_val"], outputs=True),
    }


def floors(d: dict) -> dict:
    """`{name: fn}`: the minimal compiled passes of each piece."""
    import keras
    import tensorflow as tf

    model = d["model"]
    forward = tf.function(
        lambda t: model(t, training=False), reduce_retracing=True, autograph=False
    )

    @tf.function(reduce_retracing=True, autograph=False)
    def forward_backward(t, c):
        with tf.GradientTape() as tape:
            tape.watch(t)
            score = tf.gather(model(t, training=False), c, batch_dims=1)
        return tape.gradient(score, t)

    rng = np.random.default_rng(0)

    def images(n):
        return tf.constant(rng.random((n, 64, 64, 3), dtype=np.float32))

    def fwd(n, batch=256):
        x = images(n)
        return lambda: [forward(x[s : s + batch]).numpy() for s in range(0, n, batch)]

    def fwd_bwd(n, batch, times=1):
        x, c = images(n), tf.constant(rng.integers(0, 5, n).astype(np.int32))

        def run():
            for _ in range(times):
                for s in range(0, n, batch):
                    forward_backward(x[s : s + batch], c[s : s + batch]).numpy()

        return run

    from keras_cnnvis.callbacks.plan import anatomy_layers

    layers, _, _ = anatomy_layers(model, (64, 64, 3))
    sub = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])

    @tf.function(reduce_retracing=True, autograph=False)
    def truncated(t):  # the layers' maps reduced to each channel's maximum, as mining needs
        return [tf.reduce_max(m, axis=(1, 2)) for m in sub(t, training=False)]

    x400 = images(400)
    corrupt = fwd(200 + 15 * 200)
    pgd = fwd_bwd(64, 64, times=10)
    pgd_fwd = fwd(3 * 64)
    ig = fwd_bwd(8 * 32, 64)
    one = fwd_bwd(8, 8)
    faith = fwd(8 + 8 * (20 * 3 + 50))
    return {
        "robustness": lambda: (corrupt(), pgd(), pgd_fwd()),
        "robustness_corruptions": corrupt,
        "robustness_pgd": lambda: (pgd(), pgd_fwd()),
        "occlusion": fwd(8 + 8 * 15 * 15),
        "saliency": lambda: (one(), one(), ig()),
        "integrated_gradients": ig,
        "grad_cam_faithfulness": lambda: (one(), one(), faith()),
        "patches": lambda: [
            [t.numpy() for t in truncated(x400[s : s + 64])] for s in range(0, 400, 64)
        ],
        "classes": fwd_bwd(5, 5, times=32),
        "embedding_forward": fwd(400),
    }


def old_package(rev: str) -> str:
    """Extracts `keras_cnnvis` at `rev` as `keras_cnnvis_before` and puts it on the path."""
    folder = tempfile.mkdtemp(prefix="cnnvis_before_")
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", rev, "keras_cnnvis"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    package = os.path.join(folder, "keras_cnnvis_before")
    os.rename(os.path.join(folder, "keras_cnnvis"), package)
    for base, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(base, name)
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(re.sub(r"\bkeras_cnnvis\b", "keras_cnnvis_before", text))
    sys.path.insert(0, folder)
    return "keras_cnnvis_before"


def compare(rev: str, rounds: int, only: list[str] | None) -> None:
    warnings.simplefilter("ignore")
    before_package = old_package(rev)
    d = demo_setup()
    before, after, floor = pieces(d, before_package), pieces(d), floors(d)
    auto = pieces(d, predictor_batch=None)  # the proposed RobustnessCallback change
    for name in ("robustness", "robustness_corruptions"):
        after[f"{name} (predictor batch None)"] = auto[name]
    names = [n for n in after if only is None or n.split(" (")[0] in only]
    fns = {}
    for name in names:
        base = name.split(" (")[0]
        fns[f"before:{name}"] = before.get(name, before[base])
        fns[f"after:{name}"] = after[name]
        fns[f"floor:{base}"] = floor[base]
    start = load_average()
    times = interleaved(fns, repeats=rounds)
    print(f"demo CNN 64x64, {rounds} rounds; before = {rev}, after = the working tree")
    print(f"load average {start:.1f} -> {load_average():.1f} (2 cores)\n")
    print(f"{'piece':<42}{'before s':>9}{'after s':>9}{'floor s':>9}{'after/before':>13}")
    for name in names:
        b, a = np.asarray(times[f"before:{name}"]), np.asarray(times[f"after:{name}"])
        f = np.median(times[f"floor:{name.split(' (')[0]}"])
        ratio = np.median(a / b)
        print(f"{name:<42}{np.median(b):>9.3f}{np.median(a):>9.3f}{f:>9.3f}{ratio:>13.2f}")


def sweep(rounds: int) -> None:
    """Forward time of 3200 demo images per batch size, as ratios to batch 64."""
    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.model import BatchFunction, predict_fn

    model = build_demo_model((64, 64, 3), 5, seed=0)
    x = np.random.default_rng(0).random((3200, 64, 64, 3), dtype=np.float32)
    fn = BatchFunction(predict_fn(model))

    def at(batch):
        return lambda: [np.asarray(fn(x[s : s + batch])) for s in range(0, len(x), batch)]

    sizes = (64, 128, 256, 512, 800)
    start = load_average()
    times = interleaved({str(b): at(b) for b in sizes}, repeats=rounds)
    base = np.asarray(times["64"])
    print(f"3200 images, demo CNN 64x64; load {start:.1f} -> {load_average():.1f} (2 cores)")
    for b in sizes:
        t = np.asarray(times[str(b)])
        print(f"batch {b:>4}: median {np.median(t):.3f} s, x{np.median(t / base):.2f} of batch 64")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default=None, help="git revision of the old code")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default=None, help="comma-separated pieces")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.sweep:
        sweep(max(args.rounds, 5))
    elif args.before:
        compare(args.before, args.rounds, args.only.split(",") if args.only else None)
    else:
        parser.error("pass --before <git rev> or --sweep")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
