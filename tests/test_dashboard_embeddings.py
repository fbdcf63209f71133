"""The Embeddings page's scatter in headless Chromium, on json/embedding records served by a real
TensorBoard process: a single far-off point (common in PCA) no longer squeezes the others into a
corner; it is drawn at the plot's edge, hollow with an arrow, and its tooltip gives its true
coordinates. A layout without outliers still shows every point inside the plot.

The assertions read the canvas's pixels: points of class 0 are blue, the points under test
(the outlier, or the four extreme points) are of class 1, orange.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from browser_session import require_browser, served_dashboard
from keras_cnnvis.summary import LogWriter

require_browser()

RUN = "emb/cnnvis"
NAMES = ["<b>cloud</b>", "far & away"]
WIDTH, HEIGHT, PAD, RADIUS = 640, 440, 18, 4  # embeddings.js
N_POINTS = 61
OUTLIER = 17  # its index at step 2
OUTLIER_XY = (1000.0, 0.5)
EXTREMES = {5: (-2.0, 0.0), 22: (2.0, 0.0), 40: (0.0, -1.5), 58: (0.0, 1.5)}  # step 1


def plain_points() -> tuple[np.ndarray, np.ndarray]:
    """Step 1: a uniform square of class 0 and four class-1 points out at its sides (3 and 4.5
    interquartile ranges from the middle: inside Tukey's outer fences, no outliers)."""
    points = np.random.default_rng(0).uniform(-1, 1, (N_POINTS, 2))
    labels = np.zeros(N_POINTS, int)
    for i, xy in EXTREMES.items():
        points[i], labels[i] = xy, 1
    return points, labels


def outlier_points() -> tuple[np.ndarray, np.ndarray]:
    """Step 2: a Gaussian cloud of class 0, wider than high, and one class-1 point far right."""
    points = np.random.default_rng(1).normal(size=(N_POINTS, 2)) * [1.5, 1.0]
    labels = np.zeros(N_POINTS, int)
    points[OUTLIER], labels[OUTLIER] = OUTLIER_XY, 1
    return points, labels


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """One PCA record per step, in the format EmbeddingCallback writes (docs/log-format.md)."""
    logdir = tmp_path_factory.mktemp("embeddings_browser")
    writer = LogWriter(str(logdir / RUN))
    for step, (points, labels) in ((1, plain_points()), (2, outlier_points())):
        writer.json(
            "json/embedding/pca",
            {
                "method": "pca",
                "layer": "dense",
                "points": [[float(f"{a:.5g}"), float(f"{b:.5g}")] for a, b in points],
                "labels": labels,
                "predictions": labels,
                "class_names": NAMES,
                "sprite": None,
                "scores": {"trustworthiness": 0.9, "knn_accuracy": 1.0},
                "indices": np.arange(N_POINTS),
                "n_features": 8,
                "aligned": False,
                "projector": None,
                "explained_variance_ratio": [0.6, 0.2],
            },
            step,
            kind="embedding",
        )
    writer.close()
    return str(logdir)


@pytest.fixture(scope="module")
def dash(logdir):
    with served_dashboard(logdir) as board:
        yield board


def open_step(dash, step):
    dash.open({"page": "embeddings", "run": RUN, "emb": "pca", "step": step})
    dash.wait(
        "n => document.querySelector('canvas.scatter').dataset.points === String(n)", N_POINTS
    )


def canvas_rgb(dash) -> np.ndarray:
    """The scatter canvas as drawn, (HEIGHT, WIDTH, 3) RGB in CSS pixels."""
    url = dash.frame.evaluate("() => document.querySelector('canvas.scatter').toDataURL()")
    png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)
    if bgr.shape[:2] != (HEIGHT, WIDTH):  # a device pixel ratio other than 1
        bgr = cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return bgr[..., ::-1].astype(int)


def class_masks(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of class 0 (blue, #1f77b4) and of class 1 (orange, #ff7f0e)."""
    r, b = rgb[..., 0], rgb[..., 2]
    return b - r > 60, r - b > 100


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the True pixels, inclusive."""
    ys, xs = np.nonzero(mask)
    assert len(xs), "nothing of that colour is drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def check_outlier_view(dash) -> tuple[float, float]:
    """Asserts the step-2 view: the cloud fills the plot, the outlier is pinned to the right
    edge and hollow. Returns the centre of its marker."""
    cloud, far = class_masks(canvas_rgb(dash))
    left, top, right, bottom = box(cloud)
    assert (right - left) / WIDTH > 0.6 and (bottom - top) / HEIGHT > 0.6, (
        left,
        top,
        right,
        bottom,
    )
    assert dash.frame.get_attribute("canvas.scatter", "data-pinned") == str(OUTLIER)
    f_left, f_top, f_right, f_bottom = box(far)
    assert f_left > right + RADIUS, "the outlier is apart from the cloud"
    assert f_left >= WIDTH - PAD - 2 * RADIUS and f_right >= WIDTH - PAD, "at the right edge"
    assert top <= f_top <= f_bottom <= bottom  # at its own height (y 0.5, inside the cloud's)
    y = (f_top + f_bottom) // 2
    row = far[y, f_left : f_right + 1]
    # Hollow: orange, then not (the white inside), then orange again; a filled dot is solid.
    inside = np.flatnonzero(~row)
    assert len(inside) and row[: inside[0]].any() and row[inside[-1] :].any(), row.astype(int)
    # The arrow reaches out beyond the circle: the mark is wider than it is high.
    assert f_right - f_left > f_bottom - f_top + 3, (f_left, f_top, f_right, f_bottom)
    return f_left + RADIUS + 1, y


def test_a_far_outlier_is_pinned_to_the_edge_and_the_rest_fills_the_plot(dash, shots):
    open_step(dash, 2)
    x, y = check_outlier_view(dash)
    legend = dash.frame.inner_text(".legend-list")
    assert "1 point beyond the plot" in legend
    items = dash.frame.eval_on_selector_all(".legend-item", "els => els.map(e => e.textContent)")
    assert items == NAMES  # HTML-like names stay text
    assert dash.frame.eval_on_selector_all(".legend-list b", "els => els.length") == 0
    dash.frame.hover("canvas.scatter", position={"x": x, "y": y})
    dash.frame.wait_for_selector(".tooltip:not([hidden])")
    assert dash.frame.get_attribute(".tooltip", "data-index") == str(OUTLIER)
    text = dash.frame.inner_text(".tooltip")
    assert f"label: {NAMES[1]}" in text
    assert "at (1000, 0.5)" in text and "beyond the plot" in text
    # The tooltip opens on the inner side, leaving the marker in view.
    tip, plot = (
        dash.frame.locator(".tooltip").bounding_box(),
        dash.frame.locator("canvas.scatter").bounding_box(),
    )
    assert tip["x"] + tip["width"] < plot["x"] + x - RADIUS, (tip, plot, x)
    dash.page.screenshot(path=f"{shots}/embeddings_outlier.png")


def test_without_outliers_every_point_fits_inside_the_plot(dash):
    open_step(dash, 1)
    assert not dash.frame.get_attribute("canvas.scatter", "data-pinned")  # no point pinned
    assert "beyond the plot" not in dash.frame.inner_text(".legend-list")
    cloud, extremes = class_masks(canvas_rgb(dash))
    # Each extreme point is a whole dot of its own, inside the padded plot.
    n, _, stats, _ = cv2.connectedComponentsWithStats(extremes.astype(np.uint8), connectivity=8)
    dots = stats[1:]
    assert n - 1 == len(EXTREMES), dots
    for left, top, w, h, _ in dots:
        assert w >= 2 * RADIUS - 1 and h >= 2 * RADIUS - 1, dots
        assert PAD - RADIUS - 1 <= left and left + w <= WIDTH - PAD + RADIUS + 1, dots
        assert PAD - RADIUS - 1 <= top and top + h <= HEIGHT - PAD + RADIUS + 1, dots
    # They are the extremes: the whole cloud lies between them, and they span the plot
    # (top to bottom on the axis that limits the common scale).
    left, top, right, bottom = box(cloud | extremes)
    assert box(extremes) == (left, top, right, bottom)
    assert (right - left) / WIDTH > 0.6 and (bottom - top) / HEIGHT > 0.85


def test_stepping_onto_an_outlier_animates_into_the_same_view(dash):
    open_step(dash, 1)
    dash.frame.fill(".stepper input[type=range]", "1")
    dash.wait("() => location.hash.includes('step=2')")
    dash.frame.wait_for_timeout(900)  # the 450 ms animation
    check_outlier_view(dash)
