"""Cost of the embedding monitor at default settings on the demo CNN (64x64 shapes, CPU): each
step of one EmbeddingCallback.log call, the whole call, and t-SNE at the 1000-point cap.

Run: `python benchmarks/embeddings.py [--repeats 2] [--train-epochs 3]`. Prints seconds and
ratios measured in this one run (best of `repeats` after a warm-up; other processes sharing
the CPU only ever add time).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import _timing  # noqa: E402


def timed(fn, repeats: int, warm_up: bool = True) -> float:
    """Best time of `repeats` calls, after one warm-up call unless `warm_up` is False."""
    return _timing.timed(fn, repeats=repeats, warm_up=int(warm_up))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=3, help="epochs before timing")
    args = parser.parse_args()

    from keras_cnnvis import datasets
    from keras_cnnvis.callbacks.embedding import EmbeddingCallback
    from keras_cnnvis.demo import build_demo_model, train_demo_model
    from keras_cnnvis.features import projector
    from keras_cnnvis.features.embeddings import LayerFeatures
    from keras_cnnvis.features.projection import project
    from keras_cnnvis.features.scores import knn_accuracy, trustworthiness
    from keras_cnnvis.rendering.embedding import grid_image, scatter_image

    images, labels, _ = datasets.shapes(2100, size=64, seed=0)
    x_val, y_val = images[:1000], labels[:1000]
    model = build_demo_model((64, 64, 3), 5, seed=0)
    start = time.perf_counter()
    train_demo_model(model, images[1000:], labels[1000:], epochs=max(1, args.train_epochs))
    epoch = (time.perf_counter() - start) / max(1, args.train_epochs)
    print(f"demo CNN, one training epoch on 1100 images: {epoch:.2f} s")

    logdir = tempfile.mkdtemp(prefix="cnnvis_bench_")
    cb = EmbeddingCallback(logdir, (x_val, y_val), class_names=datasets.SHAPE_CLASSES)
    cb.set_model(model)
    cb.setup()
    n = len(cb.indices)
    x, y = cb.images, cb.labels
    print(f"defaults: {n} images, methods {cb.methods}, cap {cb.max_points} points\n")

    source = LayerFeatures(model)
    feats, probs = source(x, outputs=True)
    preds = probs.argmax(1)
    pca = project(feats, "pca")
    tsne = project(feats, "tsne")
    rows = [
        ("features + predictions (compiled)", lambda: source(x, outputs=True), args.repeats),
        ("knn_accuracy (leave-one-out, k=5)", lambda: knn_accuracy(feats, y), args.repeats),
        ("PCA", lambda: project(feats, "pca"), args.repeats),
        ("t-SNE fresh (1000 iterations, 1 thread)", lambda: project(feats, "tsne"), args.repeats),
        (
            "t-SNE fresh, 2 OpenMP threads",
            lambda: project(feats, "tsne", n_threads=2),
            args.repeats,
        ),
        (
            "t-SNE warm start (500 iterations)",
            lambda: project(feats, "tsne", init=tsne.points),
            args.repeats,
        ),
        ("trustworthiness (k=5)", lambda: trustworthiness(feats, tsne.points), args.repeats),
        ("scatter plot (direct raster render)", lambda: scatter_image(pca, y, preds), args.repeats),
        (
            "t-SNE image grid (linear assignment)",
            lambda: grid_image(x, tsne.points, labels=y),
            args.repeats,
        ),
        ("sprite", lambda: projector.make_sprite(x, 24), args.repeats),
        (
            "Projector files (tsv, metadata, config)",
            lambda: projector.write_embedding(
                os.path.join(logdir, "bench"), "f", feats, {"label": y, "pred": preds}, cb._sprite
            ),
            args.repeats,
        ),
    ]
    results = {}
    for name, fn, repeats in rows:
        results[name] = timed(fn, repeats)
        print(f"{name:44s} {results[name]:8.3f} s")

    step = [0]

    def log_once():
        step[0] += 1
        cb.log(step[0])

    first = timed(log_once, 1, warm_up=False)  # fresh t-SNE
    steady = timed(log_once, args.repeats, warm_up=False)  # t-SNE from the last layout
    cb.on_train_end()
    print(f"\nEmbeddingCallback.log, call with a warm t-SNE:    {steady:8.2f} s")
    print(f"EmbeddingCallback.log, first call (fresh t-SNE):  {first:8.2f} s")
    print(f"one log call / one training epoch (1100 images): {steady / epoch:8.2f}x")

    capped = (
        np.repeat(feats, 3, axis=0)
        + np.random.default_rng(0).normal(size=(3 * n, feats.shape[1])) * 1e-2
    )
    t_cap = timed(lambda: project(capped, "tsne"), 1, warm_up=False)
    print(f"t-SNE on {len(capped)} points (capped to 1000): {t_cap:.2f} s")
    ratio = (
        results["t-SNE fresh, 2 OpenMP threads"]
        / results["t-SNE fresh (1000 iterations, 1 thread)"]
    )
    print(f"t-SNE 2 threads / 1 thread: {ratio:.2f}x")


if __name__ == "__main__":
    main()
