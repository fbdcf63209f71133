"""The Network page in headless Chromium on a real fit of the demo CNN: one column per layer, a
convolution unit whose shown sum equals the logged activation and a numpy convolution of its
window, the epoch slider, folding, bounded (units) records, and a hostile layer name as text."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from browser_session import require_browser, served_dashboard
from eventfiles import read_run
from keras_cnnvis import datasets
from keras_cnnvis.callbacks import NetworkCallback
from keras_cnnvis.callbacks.network import write_network
from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.network import NetworkTracer
from keras_cnnvis.network.records import decode
from keras_cnnvis.summary import LogWriter

require_browser()

DEMO = "demo/cnnvis"
UNITS = "units/cnnvis"
HOSTILE = "hostile/cnnvis"
NESTED = "nested/cnnvis"
BACKBONE = "backbone_1.00_16"
BAD_NAME = '<img src=x onerror="alert(1)">'
PATHS = [
    "image", "conv1", "bn1", "relu1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4",
    "global_pool", "features", "predictions",
]  # fmt: skip


def _residual():
    i = keras.Input((16, 16, 3), name="x")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=BAD_NAME)(i)
    for b in range(2):
        y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=f"b{b}_a")(x)
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"b{b}_b")(y)
        x = keras.layers.ReLU(name=f"b{b}_out")(x + y)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _nested():
    """A backbone model called inside the outer one, as keras.applications bases are."""
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(i)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block_1_expand")(x)
    backbone = keras.Model(i, x, name=BACKBONE)
    i = keras.Input((16, 16, 3), name="pixels")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(i))
    return keras.Model(i, keras.layers.Dense(3, activation="softmax", name="head")(x))


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("network_browser"))
    x, y, _ = datasets.shapes(96, size=32, seed=0)
    model = build_demo_model((32, 32, 3))
    cb = NetworkCallback(
        os.path.join(logdir, "demo"),
        x[:2],
        class_names=list(datasets.SHAPE_CLASSES),
        on_error="raise",
    )
    model.fit(x[2:], y[2:], epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    writer = LogWriter(os.path.join(logdir, UNITS))
    write_network(writer, NetworkTracer(model), x[:2], 0, mode="units", max_channels=4, top=4)
    writer.close()
    hostile = _residual()
    writer = LogWriter(os.path.join(logdir, HOSTILE))
    write_network(
        writer, NetworkTracer(hostile), np.random.default_rng(0).random((1, 16, 16, 3)), 0
    )
    writer.close()
    writer = LogWriter(os.path.join(logdir, NESTED))
    write_network(writer, NetworkTracer(_nested()), x[:1, :16, :16], 0)
    writer.close()
    return logdir, model, read_run(os.path.join(logdir, DEMO))


@pytest.fixture(scope="module")
def dash(logs):
    with served_dashboard(logs[0]) as board:
        yield board


def logged(run, path, step, probe=0):
    return decode(run[f"json/network/layer/{path}"][step].value["outputs"][probe])


def open_unit(dash, path, channel):
    dash.frame.evaluate(
        """([p, c]) => [...document.querySelectorAll('.net-node')]
            .find((n) => n.dataset.path === p)
            .querySelector(`.net-tile[data-channel="${c}"]`).click()""",
        [path, channel],
    )
    dash.wait("p => document.querySelector('.unit-detail')?.dataset.path === p", path)


def unit(dash):
    return dash.frame.evaluate("() => ({...document.querySelector('.unit-detail').dataset})")


def test_one_column_per_layer_and_a_conv_unit_equals_numpy(dash, logs, shots):
    _, model, run = logs
    dash.open({"page": "network", "run": DEMO, "probe": 1})
    assert dash.data("mode") == "full" and dash.data("columns") == str(len(PATHS))
    names = dash.frame.eval_on_selector_all(
        ".net-column",
        "cs => cs.map(c => [...c.querySelectorAll('.net-name')].map(n => n.textContent))",
    )
    assert names == [[p] for p in PATHS]
    # conv2 (ReLU) at a position where it is positive: the shown sum is the activation.
    conv2 = logged(run, "conv2", 1, probe=1)
    pool1 = logged(run, "pool1", 1, probe=1)
    channel = int(np.argmax((conv2 > 0).sum((0, 1))))
    ys, xs = np.nonzero(conv2[1:-1, 1:-1, channel] > 0)
    y, x = int(ys[len(ys) // 2]) + 1, int(xs[len(xs) // 2]) + 1
    open_unit(dash, "conv2", channel)
    size = dash.frame.eval_on_selector(
        "canvas.net-map.pickable", "c => [c.clientWidth, c.clientHeight]"
    )
    h, w = conv2.shape[:2]
    where = {"x": (x + 0.5) * size[0] / w, "y": (y + 0.5) * size[1] / h}
    dash.frame.click("canvas.net-map.pickable", position=where)
    dash.wait("p => document.querySelector('.unit-detail')?.dataset.position === p", f"{y},{x}")
    shown = unit(dash)
    kernel, bias = (np.asarray(v, np.float64) for v in model.get_layer("conv2").weights)
    padded = np.pad(pool1.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    numpy_conv = float(
        np.sum(padded[y : y + 3, x : x + 3, :] * kernel[..., channel]) + bias[channel]
    )
    activation = float(conv2[y, x, channel])
    shown_sum = float(dash.frame.inner_text(".unit-sum"))
    assert shown_sum == pytest.approx(activation, abs=1e-4)
    assert shown_sum == pytest.approx(numpy_conv, abs=1e-4)
    assert float(shown["sum"]) == pytest.approx(numpy_conv, abs=1e-5)
    assert float(shown["value"]) == pytest.approx(activation, abs=1e-6)
    assert "equal" in dash.frame.inner_text(".unit-check")
    rows = dash.frame.eval_on_selector_all(".net-term[data-channel]", "rs => rs.length")
    assert rows == 8 and "the other 8 are summed" in dash.frame.inner_text(".unit-detail")
    dash.page.screenshot(path=os.path.join(shots, "network_demo.png"), full_page=True)
    # The epoch slider: before training the same unit holds another logged value.
    dash.frame.fill(".stepper input[type=range]", "0")
    before = float(logged(run, "conv2", 0, probe=1)[y, x, channel])
    dash.wait(
        "v => Math.abs(Number(document.querySelector('.unit-detail')?.dataset.value) - v) < 1e-6",
        before,
    )


def test_dense_softmax_and_batchnorm_units(dash, logs):
    _, _, run = logs
    dash.open({"page": "network", "run": DEMO, "probe": 0, "step": 1})
    dash.frame.click('.net-node[data-path="predictions"] .net-bar[data-channel="2"]')
    dash.wait("() => document.querySelector('.unit-detail')?.dataset.path === 'predictions'")
    probs = logged(run, "predictions", 1)
    assert float(unit(dash)["value"]) == pytest.approx(float(probs[2]), abs=1e-6)
    assert "equal" in dash.frame.inner_text(".unit-check")
    assert dash.frame.eval_on_selector_all("table.net-softmax tbody tr", "r => r.length") == 5
    open_unit(dash, "bn1", 3)
    assert "equal" in dash.frame.inner_text(".unit-check")
    open_unit(dash, "pool1", 5)
    assert "equal" in dash.frame.inner_text(".unit-check")


def test_units_records_open_the_logged_peak_unit(dash, logs):
    dash.open({"page": "network", "run": UNITS})
    assert dash.data("mode") == "units"
    tiles = dash.frame.eval_on_selector_all(
        '.net-node[data-path="conv3"] .net-tile', "ts => ts.map(t => Number(t.dataset.channel))"
    )
    assert len(tiles) == 4
    open_unit(dash, "conv3", tiles[0])
    assert "equal" in dash.frame.inner_text(".unit-check")
    assert "the other 28 are summed" in dash.frame.inner_text(".unit-detail")


def test_folding_and_a_hostile_layer_name_shown_as_text(dash, logs):
    dash.open({"page": "network", "run": HOSTILE, "fold": "blocks"})
    folded = int(dash.data("columns"))
    names = dash.frame.eval_on_selector_all(".net-name", "ns => ns.map(n => n.textContent)")
    assert BAD_NAME in names
    assert dash.frame.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    dash.frame.click(".net-node.folded .net-fold")
    dash.wait("n => Number(document.querySelector('section.page').dataset.columns) > n", folded)
    dash.open({"page": "network", "run": HOSTILE, "fold": "layers"})
    assert int(dash.data("nodes")) == 12 and int(dash.data("columns")) > folded
    open_unit(dash, BAD_NAME, 1)
    assert BAD_NAME in dash.frame.inner_text(".unit-detail h3")


def contrast(fg, bg):
    """WCAG contrast ratio of two "rgb(r, g, b)" colours."""

    def luminance(css):
        channels = [int(v) / 255 for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted([luminance(fg), luminance(bg)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_opening_a_unit_brings_it_into_view_with_readable_numbers(dash, logs):
    # A short window: the detail starts below the fold, where a click used to leave it.
    dash.page.set_viewport_size({"width": 1400, "height": 700})
    try:
        dash.open({"page": "network", "run": DEMO, "probe": 0})
        below = "() => document.querySelector('.net-detail').getBoundingClientRect().top"
        assert dash.frame.evaluate(below) > dash.frame.evaluate("innerHeight")
        open_unit(dash, "conv3", 2)
        # Scrolled (smoothly) until the detail starts 8 px below the sticky header.
        dash.wait("""() => {
                const top = document.querySelector('.net-detail').getBoundingClientRect().top;
                const head = document.querySelector('header.top').getBoundingClientRect().bottom;
                return scrollY > 0 && Math.abs(top - (head + 8)) < 1;
            }""")
        # A position picked on the detail's own map does not move the view (a reveal would
        # move it by hundreds of pixels; the smooth scroll settles within a pixel).
        dash.frame.wait_for_timeout(300)
        at = dash.frame.evaluate("scrollY")
        dash.frame.click("canvas.net-map.pickable", position={"x": 3, "y": 3})
        dash.wait("() => document.querySelector('.unit-detail')?.dataset.position === '0,0'")
        dash.frame.wait_for_timeout(300)
        assert abs(dash.frame.evaluate("scrollY") - at) <= 2
    finally:
        dash.page.set_viewport_size({"width": 1400, "height": 1000})
    # Every number of the windows, kernels and products reads at least 4.5:1 (WCAG AA)
    # against its cell: white on the dark reds and blues, black on the pale ones.
    cells = dash.frame.eval_on_selector_all(
        "table.net-grid td",
        "tds => tds.map(td => [getComputedStyle(td).color, getComputedStyle(td).backgroundColor])",
    )
    assert len(cells) == 8 * 3 * 9
    ratios = [contrast(fg, bg) for fg, bg in cells]
    assert min(ratios) >= 4.5, min(ratios)
    assert {fg for fg, _ in cells} == {"rgb(0, 0, 0)", "rgb(255, 255, 255)"}


def test_nested_model_columns_drop_the_common_prefix(dash, logs):
    dash.open({"page": "network", "run": NESTED, "fold": "layers"})
    heads = dash.frame.eval_on_selector_all(
        ".net-node", "ns => ns.map(n => [n.querySelector('.net-name').textContent, n.dataset.path])"
    )
    paths = ["pixels", f"{BACKBONE}/stem", f"{BACKBONE}/block_1_expand", "gap", "head"]
    assert [path for _, path in heads] == paths
    assert [name for name, _ in heads] == ["pixels", "stem", "block_1_expand", "gap", "head"]
    titles = dash.frame.eval_on_selector_all(".net-name", "ns => ns.map(n => n.title)")
    assert titles == paths  # the full path on hover
    legend = dash.frame.inner_text(".net-legend")
    assert f"Layers inside {BACKBONE} are named without “{BACKBONE}/”" in legend
    # The demo model has no nested model: full names, no note.
    dash.open({"page": "network", "run": DEMO})
    assert "named without" not in dash.frame.inner_text(".net-legend")
