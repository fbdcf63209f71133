"""Benchmark: how well filter health tells untrained from trained layers on the demo CNN, and
what it costs. Optionally writes the README figures (filters, activations, health).

Run: python benchmarks/health.py [--untrained-seeds 20] [--seeds 3] [--epochs 8]
     [--probe 32] [--figures docs/images]

Untrained: `build_demo_model(seed=s)` for `--untrained-seeds` seeds; the share of filters the
structure test flags noise-like (alpha = 0.01) per conv layer, and the spectral scores.
Trained: the demo CNN (model seeds 0..`--seeds`-1) trained like the shared test fixture
(`shapes(1600, seed=0)`, 300 held out, batch 32, `--epochs` epochs) with `FilterHealthCallback`
attached (probe: `--probe` validation images); the same shares after every epoch, the final
verdicts, and the callback's time per record against the time of an epoch.
Cost: `filter_health` on the demo CNN with 64 probe images (first call, which also builds and
traces the feature extractor and the spike nulls, and steady state).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONVS = ["conv1", "conv2", "conv3", "conv4"]


def untrained(n_seeds: int) -> dict:
    import numpy as np

    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.weights.health import filter_health

    shares = {c: [] for c in CONVS}
    spikes = {c: [] for c in CONVS}
    for seed in range(n_seeds):
        report = filter_health(build_demo_model((64, 64, 3), 5, seed=seed), CONVS)
        for c in CONVS:
            shares[c].append(report[c].evidence["noise_like_fraction"])
            spikes[c].append(report[c].evidence["spike_ratio"])
    return {
        c: {
            "noise_like_mean": float(np.mean(shares[c])),
            "noise_like_min": float(np.min(shares[c])),
            "spike_ratio_mean": float(np.mean(spikes[c])),
        }
        for c in CONVS
    }


def trained(seed: int, epochs: int, n_probe: int, figures: str | None) -> dict:
    import keras
    import numpy as np

    from keras_cnnvis import datasets, filter_grid
    from keras_cnnvis.callbacks import FilterHealthCallback
    from keras_cnnvis.demo import build_demo_model, train_demo_model

    images, labels, _ = datasets.shapes(1600, size=64, seed=0)
    x_train, y_train = images[300:], labels[300:]
    x_val, y_val = images[:300], labels[:300]
    model = build_demo_model((64, 64, 3), 5, seed=seed)
    initial = keras.models.clone_model(model)
    initial.set_weights(model.get_weights())
    log_dir = tempfile.mkdtemp(prefix="cnnvis_health_bench_")
    cb = FilterHealthCallback(log_dir, probe=x_val[:n_probe], warn=False, on_error="raise")
    record_seconds = []
    log = cb.log

    def timed(step, logs=None):
        t = time.perf_counter()
        log(step, logs)
        record_seconds.append(time.perf_counter() - t)

    cb.log = timed
    per_epoch, grids = [], {}

    class Recorder(keras.callbacks.Callback):
        """Runs after the health callback: its report is this epoch's."""

        def on_epoch_begin(self, epoch, logs=None):
            if not per_epoch:  # the callback logged the initial state before this hook
                per_epoch.append({c: cb.report[c].evidence["noise_like_fraction"] for c in CONVS})
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # Epoch time without the callback's own record (it ran just before this hook).
            spent = time.perf_counter() - self.start - record_seconds[-1]
            self.seconds = getattr(self, "seconds", []) + [spent]
            per_epoch.append({c: cb.report[c].evidence["noise_like_fraction"] for c in CONVS})
            if epoch + 1 in (2, 4, epochs):
                grids[epoch + 1] = filter_grid(model, "conv1", scale=6)

    recorder = Recorder()
    grids[0] = filter_grid(model, "conv1", scale=6)
    train_demo_model(model, x_train, y_train, epochs, callbacks=[cb, recorder])
    acc = float(np.mean(np.argmax(model.predict(x_val, verbose=0), -1) == y_val))
    report = cb.report
    out = {
        "seed": seed,
        "val_accuracy": acc,
        "noise_like_by_epoch": per_epoch,
        "verdicts": {k: h.verdict for k, h in report.items()},
        "spike_ratio": {k: h.evidence["spike_ratio"] for k, h in report.items()},
        "spectral_alpha": {k: h.evidence["spectral_alpha"] for k, h in report.items()},
        "callback_seconds_per_record": float(np.median(record_seconds[1:])),
        "epoch_seconds": float(np.median(recorder.seconds)),
        "epochs_to_conv1_below_half": next(
            (e for e, d in enumerate(per_epoch) if d["conv1"] < 0.5), None
        ),
    }
    if figures:
        write_figures(figures, model, initial, x_val, y_val, grids)
    return out


def cost(n_probe: int) -> dict:
    import numpy as np

    from keras_cnnvis import datasets
    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.weights.health import filter_health, snapshot_kernels

    model = build_demo_model((64, 64, 3), 5, seed=0)
    probe, _, _ = datasets.shapes(n_probe, size=64, seed=1)
    initial = snapshot_kernels(model)
    t = time.perf_counter()
    filter_health(model, probe=probe, initial_weights=initial)
    first = time.perf_counter() - t
    from keras_cnnvis.model import FeatureExtractor
    from keras_cnnvis.weights.health import health_layers

    extractor = FeatureExtractor(model, [i.layer for i in health_layers(model)])
    filter_health(model, probe=probe, initial_weights=initial, extractor=extractor)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        filter_health(model, probe=probe, initial_weights=initial, extractor=extractor)
        runs.append(time.perf_counter() - t)
    t = time.perf_counter()
    filter_health(model, initial_weights=initial)
    weights_only = time.perf_counter() - t
    return {
        "probe_images": n_probe,
        "first_call_seconds": first,
        "steady_seconds": float(np.min(runs)),
        "weights_only_seconds": weights_only,
    }


def save(path: str, picture) -> None:
    """PNG with maximum zlib compression (README pictures should stay under ~150 KB)."""
    import cv2

    from keras_cnnvis.rendering import image

    rgb = image.to_uint8(picture)
    cv2.imwrite(
        path,
        rgb[..., ::-1] if rgb.ndim == 3 and rgb.shape[-1] == 3 else rgb,
        [cv2.IMWRITE_PNG_COMPRESSION, 9],
    )


def write_figures(folder: str, model, initial, x_val, y_val, grids) -> None:
    """README pictures: conv1 over training, health untrained vs trained, activation maps."""
    import numpy as np

    from keras_cnnvis import activation_grid, activation_maps
    from keras_cnnvis.rendering import image
    from keras_cnnvis.weights.health import filter_health
    from keras_cnnvis.rendering.health import health_grid, text_block

    os.makedirs(folder, exist_ok=True)

    def labelled(picture, text, width=None):
        width = width or picture.shape[1]
        if picture.shape[-1] == 1:
            picture = np.repeat(picture, 3, axis=-1)
        canvas = np.ones((picture.shape[0], width, 3), np.float32)
        canvas[:, : picture.shape[1]] = picture
        return np.concatenate([text_block([text], width), canvas])

    def side_by_side(parts, gap=12):
        h = max(p.shape[0] for p in parts)
        padded = []
        for p in parts:
            q = np.ones((h, p.shape[1], 3), np.float32)
            q[: p.shape[0]] = p
            padded.extend([q, np.ones((h, gap, 3), np.float32)])
        return np.concatenate(padded[:-1], axis=1)

    # conv1 filters at epochs 0, 2, 4, last.
    steps = sorted(grids)
    save(
        os.path.join(folder, "filters_conv1_epochs.png"),
        side_by_side([labelled(grids[s], f"epoch {s}") for s in steps]),
    )
    # Health: untrained vs trained conv1, flagged (noise-like) filters outlined in red.
    parts = []
    for name, m in (("untrained", initial), ("trained", model)):
        h = filter_health(m, "conv1")["conv1"]
        grid, _ = health_grid(m, h, scale=8)
        e = h.evidence
        text = f"{name}: {e['noise_like_filters']}/{e['tested_filters']} noise-like - {h.verdict}"
        parts.append(labelled(grid, text, width=max(grid.shape[1], 330)))
    save(os.path.join(folder, "health_untrained_vs_trained.png"), side_by_side(parts))
    # Activation maps of one probe per class after conv1 (+ BatchNorm + ReLU: the `relu1`
    # layer) and conv3, strongest channels first.
    picks = [int(np.flatnonzero(y_val == c)[0]) for c in range(3)]
    for layer, n_maps in (("relu1", 6), ("conv3", 16)):
        maps = activation_maps(model, x_val[picks], layer, order="mean", max_channels=n_maps)[layer]
        rows = []
        for k, idx in enumerate(picks):
            grid = activation_grid(
                maps, cmap="viridis", cols=8, scale=1 if layer == "relu1" else 2
            )[k]
            probe = image.resize(x_val[idx], (grid.shape[0], grid.shape[0]))
            rows.append(side_by_side([probe, grid], gap=6))
        sep = np.ones((6, rows[0].shape[1], 3), np.float32)
        picture = np.concatenate([r for row in rows for r in (row, sep)][:-1])
        save(os.path.join(folder, f"activations_{layer}.png"), picture)


def depthwise_and_dense_figures(folder: str) -> dict:
    """Filters of a trained DepthwiseConv2D first layer and a Dense layer on digits."""
    import keras

    from keras_cnnvis import datasets, filter_grid
    from keras_cnnvis.rendering import image
    from keras_cnnvis.weights.filters import filter_tiles

    keras.utils.set_random_seed(0)
    x, y, _ = datasets.shapes(1300, size=64, seed=0)
    i = keras.Input((64, 64, 3))
    # The demo's recipe for a readable first layer: small initialisation behind BatchNorm.
    h = keras.layers.DepthwiseConv2D(
        5,
        depth_multiplier=4,
        padding="same",
        depthwise_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=0),
        name="dw",
    )(i)
    h = keras.layers.MaxPooling2D()(keras.layers.ReLU()(keras.layers.BatchNormalization()(h)))
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(64, 3, activation="relu")(h))
    dw = keras.Model(i, keras.layers.Dense(5, activation="softmax")(h))
    dw.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = dw.fit(x, y, epochs=8, batch_size=32, verbose=0)
    save(os.path.join(folder, "filters_depthwise.png"), filter_grid(dw, "dw", scale=8))

    xd, yd = datasets.digits()
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 1))
    dense = keras.layers.Dense(
        10, activation="softmax", name="fc", kernel_regularizer=keras.regularizers.L2(1e-3)
    )
    fc = keras.Model(i, dense(keras.layers.Flatten()(i)))
    fc.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist_fc = fc.fit(xd, yd, epochs=30, batch_size=64, verbose=0)
    # One row of 10 templates (digit 0..9) rather than a near-square grid.
    tiles = filter_tiles(fc, "fc")
    grid = image.tile_grid(tiles.tiles, cols=10, scale=8)
    save(os.path.join(folder, "filters_dense_digits.png"), grid)
    return {
        "depthwise_train_accuracy": float(hist.history["accuracy"][-1]),
        "dense_digits_train_accuracy": float(hist_fc.history["accuracy"][-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--untrained-seeds", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--probe", type=int, default=32)
    parser.add_argument("--figures", default=None, help="folder for the README figures")
    args = parser.parse_args()

    results = {"untrained": untrained(args.untrained_seeds)}
    results["cost"] = cost(64)
    results["trained"] = [
        trained(s, args.epochs, args.probe, args.figures if s == 0 else None)
        for s in range(args.seeds)
    ]
    if args.figures:
        results["figures"] = depthwise_and_dense_figures(args.figures)
    print(json.dumps(results, indent=1))
    print("\nconv1 noise-like share (alpha = 0.01):")
    u = results["untrained"]
    print(
        f"  untrained ({args.untrained_seeds} seeds): mean {u['conv1']['noise_like_mean']:.3f}, "
        f"min {u['conv1']['noise_like_min']:.3f}"
    )
    for t in results["trained"]:
        shares = " ".join(f"{e['conv1']:.2f}" for e in t["noise_like_by_epoch"])
        print(f"  trained seed {t['seed']} (val acc {t['val_accuracy']:.2f}) by epoch: {shares}")
        print(f"    verdicts: {t['verdicts']}")
        ratio = t["callback_seconds_per_record"] / t["epoch_seconds"]
        print(
            f"    FilterHealthCallback {t['callback_seconds_per_record']:.2f} s per record, "
            f"epoch {t['epoch_seconds']:.1f} s (ratio {ratio:.2f})"
        )
    c = results["cost"]
    print(
        f"  filter_health, demo CNN, 64 probes: first call {c['first_call_seconds']:.2f} s, "
        f"steady {c['steady_seconds']:.2f} s, weights only {c['weights_only_seconds']:.2f} s"
    )


if __name__ == "__main__":
    main()
