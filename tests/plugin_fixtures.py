"""Writes keras-cnnvis log directories with every record kind, for the cnnvis plugin tests,
and serves them: an in-process client of the plugin, a real `tensorboard` process.

Records follow docs/log-format.md and go through `keras_cnnvis.summary.LogWriter`; the returned
`WrittenRun` says exactly what was written so tests can compare the plugin's answers with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
from tensorboard.backend import application
from tensorboard.backend.event_processing import (
    data_ingester,
    data_provider,
    plugin_event_multiplexer,
)
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

from keras_cnnvis.summary import LogWriter, jsonable
from tensorboard_plugin_cnnvis import plugin as plugin_lib

CLASS_NAMES = ("circle", "square", "triangle")
CLASS_COLOURS = np.array([[230, 80, 60], [60, 140, 230], [240, 200, 40]], np.float32) / 255.0
XSS_RUN = "<img src=x onerror=alert(1)>"


@dataclasses.dataclass
class WrittenRun:
    """What a fixture wrote into one run directory.

    Attributes:
        run_dir: the run directory.
        images: image tag -> {step: uint8 array (N, H, W, C) as written}.
        json: JSON tag -> {step: payload as read back (plain JSON types)}.
        scalars: scalar tag -> {step: value}.
    """

    run_dir: str
    images: dict[str, dict[int, np.ndarray]] = dataclasses.field(default_factory=dict)
    json: dict[str, dict[int, Any]] = dataclasses.field(default_factory=dict)
    scalars: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)

    def steps(self, tag: str) -> list[int]:
        """Sorted steps written for an image or JSON tag."""
        table = self.images if tag in self.images else self.json
        return sorted(table[tag])


class _Recorder:
    """A `LogWriter` that also remembers what it wrote."""

    def __init__(self, run_dir: str):
        self.writer = LogWriter(run_dir)
        self.run = WrittenRun(run_dir=run_dir)

    def images(self, tag: str, images: np.ndarray, step: int) -> None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.dtype != np.uint8:
            images = (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        self.writer.images(tag, images, step)
        self.run.images.setdefault(tag, {})[step] = images

    def json(self, tag: str, payload: dict, step: int, kind: str) -> None:
        self.writer.json(tag, payload, step, kind=kind)
        self.run.json.setdefault(tag, {})[step] = jsonable(payload)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.scalar(tag, value, step)
        self.run.scalars.setdefault(tag, {})[step] = float(value)

    def close(self) -> WrittenRun:
        self.writer.close()
        return self.run


# Pictures ---------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, c: int, cells: int = 6) -> np.ndarray:
    """Low-frequency noise in 0..1 (bilinear upsampling of a coarse random grid)."""
    coarse = rng.random((cells + 1, cells + 1, c)).astype(np.float32)
    ys = np.linspace(0, cells, h)
    xs = np.linspace(0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    a = coarse[y0][:, x0]
    b = coarse[y0][:, x0 + 1]
    cc = coarse[y0 + 1][:, x0]
    d = coarse[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy


def shape_mask(label: int, size: int, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean mask of a circle (0), square (1) or triangle (2) centred at (cy, cx)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if label == 0:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if label == 1:
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    top = cy - r
    return (yy >= top) & (yy <= cy + r * 0.8) & (np.abs(xx - cx) <= (yy - top) * 0.6)


def probe_image(label: int, seed: int, size: int = 64) -> tuple[np.ndarray, tuple[float, float]]:
    """A coloured shape on a textured background; returns (float image 0..1, centre)."""
    rng = np.random.default_rng(seed)
    background = 0.25 + 0.45 * _smooth_noise(rng, size, size, 3)
    cy, cx = rng.uniform(size * 0.35, size * 0.65, 2)
    mask = shape_mask(label, size, cy, cx, size * 0.22)
    image = background.copy()
    image[mask] = CLASS_COLOURS[label] * (0.85 + 0.15 * rng.random())
    return image, (float(cy), float(cx))


def grid(tiles: np.ndarray, rows: int, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Lays out (N, h, w, C) tiles row-major in a rows x cols grid with `pad` pixels around."""
    n, h, w, c = tiles.shape
    out = np.full((pad + rows * (h + pad), pad + cols * (w + pad), c), fill, np.float32)
    for i in range(min(n, rows * cols)):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = tiles[i]
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo + 1e-8)


def colormap(values: np.ndarray) -> np.ndarray:
    """A viridis-like colormap for values in 0..1 -> (..., 3) floats."""
    anchors = np.array(
        [
            [0.27, 0.00, 0.33],
            [0.23, 0.32, 0.55],
            [0.13, 0.57, 0.55],
            [0.37, 0.79, 0.38],
            [0.99, 0.91, 0.14],
        ],
        np.float32,
    )
    v = np.clip(values, 0, 1) * (len(anchors) - 1)
    i = np.minimum(v.astype(int), len(anchors) - 2)
    f = (v - i)[..., None]
    return anchors[i] * (1 - f) + anchors[i + 1] * f


def _upscale(x: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(x, factor, axis=-3), factor, axis=-2)


def _filters_at(rng_seed: int, n: int, k: int, t: float) -> np.ndarray:
    """n RGB kxk filters drifting from noise (t=0) to oriented edges / colour blobs (t=1)."""
    rng = np.random.default_rng(rng_seed)
    noise = rng.normal(size=(n, k, k, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:k, 0:k].astype(np.float32) - (k - 1) / 2
    patterns = np.empty_like(noise)
    for i in range(n):
        angle = math.pi * i / n
        colour = rng.normal(size=3).astype(np.float32)
        if i % 3 == 2:
            blob = np.exp(-(yy**2 + xx**2) / (k / 3) ** 2)
            patterns[i] = blob[..., None] * colour
        else:
            edge = np.tanh(1.5 * (np.cos(angle) * xx + np.sin(angle) * yy))
            patterns[i] = edge[..., None] * (colour * 0.3 + 1.0)
    return (1 - t) * noise + t * 2.0 * patterns


# Writers ----------------------------------------------------------------------------------


def write_full_run(
    run_dir: str,
    steps: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
    layers: tuple[str, ...] = ("conv1", "block2/conv2"),
    n_probes: int = 4,
    methods: tuple[str, ...] = ("grad_cam", "saliency"),
    embedding_methods: tuple[str, ...] = ("pca", "tsne"),
    n_points: int = 90,
    map_size: int = 32,
) -> WrittenRun:
    """Writes every record kind of docs/log-format.md for a run that "trains" over `steps`.

    Filters sharpen from noise into edges, noisy filters get fewer, attribution moves onto the
    object and embedding clusters separate, so the dashboard shows something that evolves.
    Probe images are logged once, at the first step; embeddings from the second step on.

    Returns:
        What was written.
    """
    rec = _Recorder(run_dir)
    last = max(steps)
    probes, centres = zip(*(probe_image(i % 3, seed=100 + i) for i in range(n_probes)))
    probes = np.stack(probes)
    labels = [i % 3 for i in range(n_probes)]
    rec.images("probes/images", probes, steps[0])

    point_rng = np.random.default_rng(7)
    point_labels = point_rng.integers(0, 3, n_points)
    start = point_rng.normal(size=(n_points, 2)) * 2.0
    centres2d = np.array([[-3.0, -1.5], [3.0, -1.0], [0.0, 3.0]])
    target = centres2d[point_labels] + point_rng.normal(size=(n_points, 2)) * 0.7
    thumbs = np.stack(
        [probe_image(int(c), seed=500 + i, size=16)[0] for i, c in enumerate(point_labels)]
    )
    per_row = math.ceil(math.sqrt(n_points))
    sprite = grid(thumbs, math.ceil(n_points / per_row), per_row, pad=0, fill=0.0)

    for step in steps:
        t = step / last if last else 1.0
        for li, layer in enumerate(layers):
            n_filters = 16 if li == 0 else 24
            k = 5 if li == 0 else 3
            weights = _filters_at(11 + li, n_filters, k, t)
            shown = weights if li == 0 else np.repeat(weights[..., :1], 3, axis=-1)
            scale = 15 // k
            tiles = _upscale(np.stack([_normalise(f) for f in shown]), scale)
            cols = 4 if li == 0 else 6
            rows = math.ceil(n_filters / cols)
            rec.images(f"filters/{layer}", grid(tiles, rows, cols), step)
            rec.json(
                f"json/filters/{layer}",
                {
                    "layer": layer,
                    "n_filters": n_filters,
                    "kernel_size": [k, k],
                    "in_channels": 3 if li == 0 else 16,
                    "shown_channels": [0, 1, 2] if li == 0 else [0],
                    "mode": "rgb" if li == 0 else "channels",
                    "grid": {"rows": rows, "cols": cols, "tile": [k * scale, k * scale], "pad": 1},
                },
                step,
                kind="filters",
            )
            _write_health(rec, layer, weights, tiles, rows, cols, step, t)
            _write_activations(rec, layer, li, probes, step, t)
            _write_patches(rec, layer, li, probes, step)
        for mi, method in enumerate(methods):
            _write_attribution(rec, method, mi, probes, centres, labels, step, t, map_size)
        if step != steps[0]:
            points_t = (1 - t) * start + t * target
            predictions = np.where(
                point_rng.random(n_points) < 0.45 + 0.55 * t,
                point_labels,
                point_rng.integers(0, 3, n_points),
            )
            for em, method in enumerate(embedding_methods):
                scale = 1.0 if method == "pca" else 12.0
                points = points_t * scale + (point_rng.normal(size=(n_points, 2)) * 0.05 * em)
                knn = float(np.mean(predictions == point_labels))
                rec.json(
                    f"json/embedding/{method}",
                    {
                        "method": method,
                        "layer": layers[-1],
                        "points": np.round(points, 4),
                        "labels": point_labels,
                        "predictions": predictions,
                        "class_names": list(CLASS_NAMES),
                        "sprite": {
                            "tag": "embedding/sprite",
                            "single_image_dim": [16, 16],
                            "per_row": per_row,
                        },
                        "scores": {
                            "trustworthiness": round(0.7 + 0.25 * t, 4),
                            "knn_accuracy": knn,
                        },
                    },
                    step,
                    kind="embedding",
                )
                rec.images(f"embedding/{method}", _scatter_image(points, point_labels), step)
                rec.scalar(f"embedding/{method}/knn_accuracy", knn, step)
            rec.images("embedding/sprite", sprite, step)
        _write_confusion(rec, step, t)
        rec.images("neighbors/feature", grid(probes[:3], 1, 3), step)
    rec.images("synthesis/class_0", probes[:1], last)
    return rec.close()


def _write_health(rec, layer, weights, tiles, rows, cols, step, t):
    n = len(weights)
    norms = np.sqrt((weights**2).reshape(n, -1).sum(1))
    rng = np.random.default_rng(step * 31 + len(layer))
    noise_score = np.clip((1 - t) * 0.9 + rng.random(n) * 0.2, 0, 1)
    change = (1 - t) * 0.5 + rng.random(n) * 0.05
    dead = np.zeros(n, bool)
    dead[[3, 7]] = t > 0.5
    noisy = noise_score > 0.6
    flags = {"dead": np.flatnonzero(dead), "noisy": np.flatnonzero(noisy & ~dead)}
    outlined = tiles.copy()
    for i in np.flatnonzero(dead | noisy):
        outlined[i, :2] = outlined[i, -2:] = outlined[i, :, :2] = outlined[i, :, -2:] = [1, 0, 0]
    rec.images(f"health/{layer}", grid(outlined, rows, cols), step)
    verdict = "not converged" if t < 0.4 else ("converging" if t < 0.9 else "healthy")
    rec.json(
        f"json/health/{layer}",
        {
            "layer": layer,
            "verdict": verdict,
            # As FilterHealthCallback writes them: converging with findings -> amber badge.
            "converged": bool(t >= 0.4),
            "problems": [f"dead units: {int(dead.sum())}/{n}"] if dead.any() else [],
            "evidence": {
                "noisy_fraction": float(noisy.mean()),
                "dead_fraction": float(dead.mean()),
                "mean_change": float(change.mean()),
            },
            "columns": ["index", "norm", "noise_score", "change", "dead"],
            "filters": [
                {
                    "index": i,
                    "norm": round(float(norms[i]), 4),
                    "noise_score": round(float(noise_score[i]), 4),
                    "change": round(float(change[i]), 4),
                    "dead": bool(dead[i]),
                }
                for i in range(n)
            ],
            "flags": flags,
        },
        step,
        kind="health",
    )
    rec.scalar(f"health/{layer}/noisy_fraction", float(noisy.mean()), step)
    rec.scalar(f"health/{layer}/dead_fraction", float(dead.mean()), step)
    rec.scalar(f"health/{layer}/mean_change", float(change.mean()), step)


def _feature_maps(probe: np.ndarray, n: int, size: int, t: float, shift: int) -> np.ndarray:
    grey = probe.mean(-1)
    step = probe.shape[0] // size
    grey = grey[::step, ::step][:size, :size]
    gy, gx = np.gradient(grey)
    maps = []
    for c in range(n):
        angle = math.pi * (c + shift) / n
        if c % 4 == 3:
            m = probe[::step, ::step][:size, :size, c % 3]
        else:
            m = np.abs(np.cos(angle) * gx + np.sin(angle) * gy)
        m = t * m + (1 - t) * 0.3 * grey
        maps.append(colormap(_normalise(np.maximum(m, 0))))
    return np.stack(maps)


def _write_activations(rec, layer, li, probes, step, t):
    size = 32 if li == 0 else 16
    n, rows, cols = 8, 2, 4
    grids = np.stack(
        [grid(_feature_maps(p, n, size, 0.3 + 0.7 * t, li), rows, cols) for p in probes]
    )
    rec.images(f"activations/{layer}", grids, step)
    rec.json(
        f"json/activations/{layer}",
        {
            "layer": layer,
            "n_channels": 16 if li == 0 else 24,
            "order": "mean",
            "channels": [3, 0, 5, 1, 7, 2, 4, 6],
            "grid": {"rows": rows, "cols": cols, "tile": [size, size], "pad": 1},
        },
        step,
        kind="activations",
    )


def _write_patches(rec, layer, li, probes, step):
    k, channels, tile = 5, [0, 1, 2, 3], 16 if li == 0 else 24
    rng = np.random.default_rng(1000 + step * 7 + li)
    crops, values, indices = [], [], []
    for _ in channels:
        idx = rng.integers(0, len(probes), k)
        vals = np.sort(rng.random(k) * (2 + step))[::-1]
        for j in idx:
            y, x = rng.integers(0, 64 - tile, 2)
            crops.append(probes[j, y : y + tile, x : x + tile])
        values.append(np.round(vals, 3))
        indices.append(idx)
    rec.images(f"patches/{layer}", grid(np.stack(crops), len(channels), k), step)
    rec.json(
        f"json/patches/{layer}",
        {
            "layer": layer,
            "k": k,
            "channels": channels,
            "values": values,
            "indices": indices,
            "receptive_field": {"size": tile, "jump": 2 if li == 0 else 4, "start": 0},
            "grid": {"rows": len(channels), "cols": k, "tile": [tile, tile], "pad": 1},
        },
        step,
        kind="patches",
    )


def _write_attribution(rec, method, mi, probes, centres, labels, step, t, size):
    rng = np.random.default_rng(300 + step * 13 + mi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    maps, overlays, info = [], [], []
    for i, (probe, (cy, cx)) in enumerate(zip(probes, centres)):
        wander = np.random.default_rng(40 + i).uniform(0, size, 2)
        target = np.array([cy, cx]) * size / probes.shape[1]
        my, mx = (1 - t) * wander + t * target
        sigma = size * (0.25 - 0.1 * t)
        m = np.exp(-((yy - my) ** 2 + (xx - mx) ** 2) / (2 * sigma**2))
        if mi == 1:
            m = m * (0.5 + 0.5 * rng.random((size, size)))
        m = _normalise(m)
        if mi == 0 and i == 1 and step >= 3:
            m = np.zeros_like(m)  # Grad-CAM's ReLU leaves nothing: an all-zero map
        maps.append(np.round(m.reshape(-1), 3))
        big = np.repeat(np.repeat(m, probes.shape[1] // size, 0), probes.shape[2] // size, 1)
        overlays.append(0.55 * probe + 0.45 * colormap(big))
        correct = rng.random() < 0.4 + 0.6 * t
        info.append(
            {
                "label": CLASS_NAMES[labels[i]],
                "prediction": CLASS_NAMES[labels[i] if correct else (labels[i] + 1) % 3],
                "score": round(float(0.35 + 0.6 * t * rng.random()), 3),
            }
        )
    rec.images(f"attribution/{method}", np.stack(overlays), step)
    rec.json(
        f"json/attribution/{method}",
        {
            "method": method,
            "layer": "block2/conv2" if method == "grad_cam" else None,
            "size": [size, size],
            "probes": info,
            "maps": maps,
        },
        step,
        kind="attribution",
    )
    rec.scalar(f"localization/{method}/pointing_game", 0.3 + 0.6 * t, step)


def _scatter_image(points: np.ndarray, labels: np.ndarray, size: int = 160) -> np.ndarray:
    image = np.ones((size, size, 3), np.float32)
    lo, hi = points.min(0), points.max(0)
    xy = (points - lo) / (hi - lo + 1e-8) * (size - 9) + 4
    for (x, y), c in zip(xy.astype(int), labels):
        image[y - 2 : y + 3, x - 2 : x + 3] = CLASS_COLOURS[c]
    return image


def _write_confusion(rec, step, t):
    n = len(CLASS_NAMES)
    correct = int(10 + 20 * t)
    matrix = np.full((n, n), (30 - correct) // 2, int)
    np.fill_diagonal(matrix, correct)
    per_class = (np.diag(matrix) / matrix.sum(1)).round(4)
    rec.json(
        "json/confusion/matrix",
        {"class_names": list(CLASS_NAMES), "matrix": matrix, "per_class_accuracy": per_class},
        step,
        kind="confusion",
    )
    rec.images("confusion/matrix", _upscale(colormap(matrix / matrix.max())[None], 20)[0], step)
    for name, acc in zip(CLASS_NAMES, per_class):
        rec.scalar(f"confusion/accuracy/{name}", float(acc), step)


def write_many_steps_run(run_dir: str, n_steps: int = 15) -> WrittenRun:
    """Writes one filters layer (image + JSON) and one health scalar at steps 0..n_steps-1."""
    rec = _Recorder(run_dir)
    for step in range(n_steps):
        t = step / max(n_steps - 1, 1)
        tiles = _upscale(np.stack([_normalise(f) for f in _filters_at(5, 8, 3, t)]), 4)
        rec.images("filters/conv1", grid(tiles, 2, 4), step)
        rec.json(
            "json/filters/conv1",
            {
                "layer": "conv1",
                "n_filters": 8,
                "kernel_size": [3, 3],
                "in_channels": 3,
                "shown_channels": [0, 1, 2],
                "mode": "rgb",
                "grid": {"rows": 2, "cols": 4, "tile": [12, 12], "pad": 1},
            },
            step,
            kind="filters",
        )
        rec.scalar("health/conv1/mean_change", 1.0 / (step + 1), step)
    return rec.close()


def write_filters_only_run(run_dir: str, steps: tuple[int, ...] = (0, 1, 2)) -> WrittenRun:
    """Writes only filter grids (image + JSON) of one layer: every other page has no data."""
    rec = _Recorder(run_dir)
    for step in steps:
        tiles = _upscale(np.stack([_normalise(f) for f in _filters_at(9, 6, 3, step / 2)]), 5)
        rec.images("filters/conv1", grid(tiles, 2, 3), step)
        rec.json(
            "json/filters/conv1",
            {
                "layer": "conv1",
                "n_filters": 6,
                "kernel_size": [3, 3],
                "in_channels": 3,
                "shown_channels": [0, 1, 2],
                "mode": "rgb",
                "grid": {"rows": 2, "cols": 3, "tile": [15, 15], "pad": 1},
            },
            step,
            kind="filters",
        )
    return rec.close()


def write_logdir(logdir: str) -> dict[str, WrittenRun]:
    """Writes the standard test log directory and returns {run name: WrittenRun}.

    Runs: `demo/cnnvis` (every kind), `many/cnnvis` (15 steps), and a filters-only run whose
    name is an HTML injection attempt.
    """
    runs = {
        "demo/cnnvis": write_full_run(os.path.join(logdir, "demo", "cnnvis")),
        "many/cnnvis": write_many_steps_run(os.path.join(logdir, "many", "cnnvis")),
        XSS_RUN: write_filters_only_run(os.path.join(logdir, XSS_RUN)),
    }
    return runs


# TensorBoard processes ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoardProcess:
    """A real `tensorboard` subprocess over a log directory (use as a context manager).

    Args:
        logdir: the log directory.
        args: extra command-line flags, e.g. `["--load_fast=false"]`.
    """

    def __init__(self, logdir: str, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="cnnvis_tb_"), "tensorboard.log")
        binary = shutil.which("tensorboard", path=os.path.dirname(sys.executable))
        command = [binary or "tensorboard", "--logdir", logdir, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), *args]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def log(self) -> str:
        """What the process printed so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Polls `/data/plugins_listing` until it answers; raises with the log on failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tensorboard exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/data/plugins_listing", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"tensorboard not up after {timeout} s:\n{self.log()}")

    def get(self, path: str, **params) -> tuple[int, str, bytes]:
        """GETs `path` (with query `params`); returns (status, content type, body)."""
        query = urllib.parse.urlencode(params, doseq=True)
        request = self.url + path + ("?" + query if query else "")
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def stop(self) -> None:
        """Stops the process: SIGTERM, a second SIGTERM if its exit handlers hang, then SIGKILL."""
        for signal_it, wait in (
            (self.process.terminate, 2),
            (self.process.terminate, 5),
            (self.process.kill, 10),
        ):
            if self.process.poll() is not None:
                break
            signal_it()
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()

    def __enter__(self) -> "TensorBoardProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# Asking the plugin ---------------------------------------------------------------------------

PREFIX = "/data/plugin/cnnvis"


def make_client(
    logdir, hints, guidance=None, provider_class=None, plugin=plugin_lib.CNNVisPlugin
) -> werkzeug_test.Client:
    """A werkzeug client over TensorBoardWSGI with only the cnnvis plugin (or `plugin`, a
    TBPlugin class such as the stock Projector's).

    Like `tensorboard --samples_per_plugin`, `hints` set both the multiplexer's reservoir
    sizes and the plugin's sampling hints, unless `guidance` gives other reservoir sizes.
    """
    tensor_size_guidance = dict(data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE)
    tensor_size_guidance.update(hints or {} if guidance is None else guidance)
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance=data_ingester.DEFAULT_SIZE_GUIDANCE,
        tensor_size_guidance=tensor_size_guidance,
    )
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider_class = provider_class or data_provider.MultiplexerDataProvider
    provider = provider_class(multiplexer, str(logdir))
    context = base_plugin.TBContext(
        data_provider=provider,
        logdir=str(logdir),
        multiplexer=multiplexer,
        sampling_hints=hints,
    )
    app = application.TensorBoardWSGI([plugin(context)], data_provider=provider)
    return werkzeug_test.Client(app)


def _path(route: str) -> str:
    """`route` relative to the plugin's prefix, or an absolute path when it starts with "/"."""
    return route if route.startswith("/") else f"{PREFIX}/{route}"


def url(route: str, **params) -> str:
    """The URL of `route` (see `_path`) with the query `params` (lists repeat the key)."""
    return f"{_path(route)}?{urllib.parse.urlencode(params, doseq=True)}"


def fetch(client, route: str, **params) -> tuple[int, str, bytes]:
    """GETs `route` (see `_path`) from a `make_client` client or a `TensorBoardProcess`.

    Returns:
        (status, content type, body).
    """
    if isinstance(client, TensorBoardProcess):
        return client.get(_path(route), **params)
    response = client.get(url(route, **params))
    return response.status_code, response.headers.get("Content-Type", ""), response.get_data()


def get_json(client, route: str, **params) -> Any:
    """The parsed JSON answer of `route`, which must answer 200 with a JSON body."""
    status, content_type, body = fetch(client, route, **params)
    assert status == 200, body[:500]
    assert content_type.startswith("application/json"), content_type
    return json.loads(body)
