"""render.health: the health grid shows each filter once, frames flagged filters in the colour
of their first flag, and compacts layers with many input channels to one channel per filter."""

import dataclasses

import keras
import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.health import (
    FLAG_COLORS,
    VERDICT_COLORS,
    health_grid,
    report_image,
    verdict_color,
)
from keras_cnnvis.weights.filters import filter_tiles
from keras_cnnvis.weights.health import HealthReport, layer_health
from keras_cnnvis.weights.kernels import layer_kernel


def test_compact_grid_frames_flagged_filters_in_their_first_flag_colour():
    i = keras.Input((8, 8, 5))
    model = keras.Model(i, keras.layers.Conv2D(5, 3, name="c")(i))
    health = dataclasses.replace(
        layer_health(layer_kernel(model, "c")),
        flags={"noise_like": [1, 2], "dead": [1]},  # filter 1: dead comes first
    )
    grid, geometry = health_grid(model, health, scale=10)
    assert geometry == {
        "rows": 2,
        "cols": 3,
        "tile": [30, 30],
        "pad": 1,
        "scale": 1,
        "mode": "compact",
        "channel": 0,
        "filters": [0, 1, 2, 3, 4],
    }
    assert grid.shape == (2 * 31 + 1, 3 * 31 + 1, 3)
    tiles = filter_tiles(model, "c")  # channel mode: 4 channels per filter, first one shown
    for f in range(5):
        r, c = divmod(f, 3)
        y, x = 1 + r * 31, 1 + c * 31
        expected = np.repeat(image.upscale(tiles.tiles[f * 4 : f * 4 + 1], 10)[0], 3, -1)
        inner = grid[y + 2 : y + 28, x + 2 : x + 28]
        np.testing.assert_allclose(inner, expected[2:28, 2:28], atol=1e-6)
        frame = grid[y, x + 15]
        colour = {1: FLAG_COLORS["dead"], 2: FLAG_COLORS["noise_like"]}.get(f)
        if colour is None:
            np.testing.assert_allclose(frame, expected[0, 15], atol=1e-6)
        else:
            np.testing.assert_allclose(frame, colour)
            np.testing.assert_allclose(grid[y + 1, x + 15], colour)  # 30 px tiles: 2 px wide
            np.testing.assert_allclose(grid[y + 29, x + 15], colour)


def test_frozen_verdict_is_neither_red_nor_amber_in_the_report_picture():
    i = keras.Input((8, 8, 3))
    model = keras.Model(i, keras.layers.Conv2D(4, 1, name="c")(i))  # 1x1: no structure test
    k = layer_kernel(model, "c")
    dead = np.zeros((2, 8, 8, 4), np.float32)
    dead[..., 1:] = np.arange(2 * 64 * 3, dtype=np.float32).reshape(2, 8, 8, 3)  # unit 0 flat
    cases = {
        "frozen": layer_health(k, trainable=False),
        "frozen_findings": layer_health(k, trainable=False, outputs=dead),
        "findings": layer_health(k, outputs=dead),
        "fine": layer_health(k),
        "failing": layer_health(k, initial=k),  # trainable and not moving: not learning
    }
    assert [cases[c].verdict for c in cases] == [
        "frozen",
        "frozen; dead units: 1/4",
        "dead units: 1/4",
        "converging",
        "not learning",
    ]
    tones = {c: verdict_color(h) for c, h in cases.items()}
    assert tones == {
        "frozen": VERDICT_COLORS["frozen"],
        "frozen_findings": VERDICT_COLORS["frozen"],
        "findings": VERDICT_COLORS["findings"],
        "fine": VERDICT_COLORS["fine"],
        "failing": VERDICT_COLORS["failing"],
    }
    # The frozen layer's verdict line is drawn in slate: its darkest text pixels are bluish.
    picture = report_image(model, HealthReport({"c": cases["frozen"]}), width=300)
    line = picture[38:60]  # the layer's block follows the two-line legend (38 px)
    ink = line[line.sum(-1) < 1.5]
    assert len(ink) > 20 and (ink[:, 2] > ink[:, 0] + 0.1).mean() > 0.9
