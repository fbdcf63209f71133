"""The Attribution page's faithfulness scores in headless Chromium, on logs of a real fit served
by a real TensorBoard process: the ranking table, the curves and the rows under the matrix show
the logged numbers; the probe rows and hover texts name the classes (numbers without
class_names); a method or class name that looks like HTML stays text.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from browser_session import require_browser, served_dashboard
from eventfiles import read_run

require_browser()

RUN = "fit/cnnvis"
PLAIN = "plain/cnnvis"
XSS = "<img src=x onerror=alert(1)>"
SETTINGS = {"steps": 4, "grid_size": 4, "nb_samples": 12, "draws": 2}
SCORES = ("deletion_auc", "insertion_auc", "mu_fidelity")
# Class names of the plain run (the fit run has none: its classes show as numbers).
NAMES = ["<b>disc</b>", "box & co", '"tri"', "plus", "ring"]


def _edges(model, images, target=None):
    """A toy gradient-family method (image edges), registered under an HTML-like name."""
    gray = np.asarray(images, np.float32).mean(-1)
    return np.stack([np.hypot(*np.gradient(g)) for g in gray]).astype(np.float32)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    from keras_cnnvis.attribution import registry
    from keras_cnnvis.callbacks import GradCAMCallback, OcclusionCallback, SaliencyCallback
    from keras_cnnvis.datasets import shapes

    logdir = tmp_path_factory.mktemp("faithfulness_browser")
    x, y, _ = shapes(48, size=16, seed=0)
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(i)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(i, keras.layers.Dense(5, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    probe, labels = x[:4], y[:4]
    registry.register(XSS, family="gradient")(_edges)
    try:
        callbacks = [
            GradCAMCallback(
                str(logdir / "fit"),
                probe,
                labels=labels,
                methods=["grad_cam", "layer_cam"],
                faithfulness=SETTINGS,
                on_error="raise",
            ),
            SaliencyCallback(
                str(logdir / "fit"),
                probe,
                labels=labels,
                methods=["saliency", XSS],
                every_n_epochs=2,
                faithfulness=SETTINGS,
                on_error="raise",
            ),
            OcclusionCallback(
                str(logdir / "fit"), probe, labels=labels, patch=4, stride=4, on_error="raise"
            ),
            GradCAMCallback(
                str(logdir / "plain"), probe, labels=labels, class_names=NAMES, on_error="raise"
            ),
        ]
        model.fit(x[8:], y[8:], epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
    finally:
        registry.unregister(XSS)
    return str(logdir), read_run(str(logdir / RUN))


@pytest.fixture(scope="module")
def dash(logs):
    with served_dashboard(logs[0], height=1100) as board:
        yield board


def _value(run, name, score, step):
    return next(r.value for r in run[f"faithfulness/{name}/{score}"] if r.step == step)


def _cells(dash, selector):
    return dash.frame.eval_on_selector_all(
        selector,
        "els => els.map(e => [e.dataset.score || e.parentElement.dataset.score,"
        " e.querySelector('.faith-value').textContent, e.className])",
    )


def test_table_curves_and_rows_show_the_logged_scores(dash, logs, shots):
    run = logs[1]
    dash.open({"page": "attribution", "run": RUN, "method": "grad_cam"})
    assert dash.data("faithMethods") == "4"
    # Every scored method (sorted by name), then the reference; occlusion was not scored.
    rows = dash.frame.eval_on_selector_all(
        "table.faith-table tbody tr", "els => els.map(e => e.dataset.method)"
    )
    assert rows == [XSS, "grad_cam", "layer_cam", "saliency", "random"]
    last = {XSS: 2, "grad_cam": 3, "layer_cam": 3, "saliency": 2, "random": 3}
    for k, (name, step) in enumerate(last.items()):
        row = f"table.faith-table tbody tr:nth-child({k + 1})"  # no selector for the XSS name
        assert dash.frame.inner_text(f"{row} td.num") == str(step)
        cells = _cells(dash, f"{row} td.faith-score")
        for (score, text, cls), want in zip(cells, SCORES):
            value = _value(run, name, want, step)
            assert score == want and text == f"{value:.3f}", (name, score)
            if name != "random":
                chance = _value(run, "random", want, step)
                gain = (chance - value) if want == "deletion_auc" else (value - chance)
                tone = "beats" if gain >= 0.005 else "fails" if gain <= -0.005 else "ties"
                assert tone in cls.split(), (name, score, value, chance, cls)
    # Trends: one point per logged step of the method.
    points = dash.frame.eval_on_selector_all(
        "tr[data-method='grad_cam'] svg.faith-trend", "els => els.map(e => e.dataset.points)"
    )
    assert points == ["4", "4", "4"]
    # The rows under the matrix: grad_cam's scores at each epoch, the reference under each.
    for score in SCORES:
        cells = dash.frame.eval_on_selector_all(
            f"tr.faith-row[data-score={score}] td.faith-cell",
            "els => els.map(e => [Number(e.dataset.step), e.textContent])",
        )
        assert [step for step, _ in cells] == [0, 1, 2, 3]
        for step, text in cells:
            own, chance = _value(run, "grad_cam", score, step), _value(run, "random", score, step)
            assert text == f"{own:.3f}rand {chance:.3f}"
    # The curves of the last epoch: the method's mean curves and the reference's.
    figure = "figure.faith-curves"
    assert dash.frame.get_attribute(figure, "data-step") == "3"
    assert dash.frame.eval_on_selector_all(f"{figure} svg path.method", "e => e.length") == 2
    assert dash.frame.eval_on_selector_all(f"{figure} svg path.reference", "e => e.length") == 2
    d = dash.frame.get_attribute(f"{figure} svg path.method", "d")
    assert d.count("L") == SETTINGS["steps"]  # steps + 1 points
    dash.page.screenshot(path=os.path.join(shots, "attribution_faithfulness.png"))
    # Clicking a cell of epoch 1 draws that epoch's curves.
    dash.frame.click("tr.faith-row[data-score=deletion_auc] td.faith-cell[data-step='1']")
    dash.wait("() => document.querySelector('figure.faith-curves').dataset.step === '1'")
    assert dash.frame.eval_on_selector_all("td.faith-cell.current", "e => e.length") == 3
    # A probe's tooltip carries its own scores.
    record = run["json/attribution/grad_cam"][-1].value["faithfulness"]["probes"][0]
    dash.wait('() => document.querySelector(\'td.cell[data-probe="0"][data-step="3"]\').title')
    title = dash.frame.get_attribute('td.cell[data-probe="0"][data-step="3"]', "title")
    assert f"deletion auc {record['deletion_auc']:.3f}" in title


def test_picking_methods_and_runs_without_scores(dash, logs):
    # A row of the table opens that method; saliency was logged at epochs 0 and 2.
    dash.open({"page": "attribution", "run": RUN, "method": "grad_cam"})
    dash.frame.click("table.faith-table tr[data-method='saliency']")
    dash.frame.wait_for_selector('section.page[data-method="saliency"][data-state="ready"]')
    steps = dash.frame.eval_on_selector_all(
        "tr.faith-row[data-score=mu_fidelity] td.faith-cell", "els => els.map(e => e.dataset.step)"
    )
    assert steps == ["0", "2"]
    # A method without scores keeps the table of the others and says so.
    dash.open({"page": "attribution", "run": RUN, "method": "occlusion"})
    missing = dash.frame.inner_text("section.faith .faith-missing")
    assert missing.startswith("No faithfulness scores were logged for occlusion: pass")
    assert dash.frame.eval_on_selector_all("tr.faith-row", "e => e.length") == 0
    # A run without any score says how to get them.
    dash.open({"page": "attribution", "run": PLAIN, "method": "grad_cam"})
    assert dash.data("faithMethods") == "0"
    assert "pass faithfulness=True" in dash.frame.inner_text(".faith-none")


def test_an_html_like_method_name_stays_text(dash):
    dash.open({"page": "attribution", "run": RUN, "method": XSS})
    assert dash.data("method") == XSS
    names = dash.frame.eval_on_selector_all(
        "table.faith-table tbody th button", "els => els.map(e => e.textContent)"
    )
    assert XSS in names  # underscores become hyphens; this name has none
    assert dash.frame.eval_on_selector_all("img[src='x']", "els => els.length") == 0
    assert dash.frame.evaluate("document.body.innerHTML.includes('<img src=x')") is False
    assert dash.dialogs == []


def _probe_texts(dash):
    """The label under each probe row, and the hover text (first line) of its last cell."""
    labels = dash.frame.eval_on_selector_all(
        "th.probe-head .probe-label", "els => els.map(e => e.textContent)"
    )
    dash.wait("() => [...document.querySelectorAll('td.cell:last-child')].every(c => c.title)")
    titles = dash.frame.eval_on_selector_all(
        "td.cell:last-child", "els => els.map(e => e.title.split('\\n')[0])"
    )
    return labels, titles


def test_probe_rows_and_hover_text_name_the_classes(dash, logs):
    # With class_names: the names, as text (one looks like HTML).
    plain = read_run(os.path.join(logs[0], PLAIN))["json/attribution/grad_cam"][-1].value
    assert plain["class_names"] == NAMES
    dash.open({"page": "attribution", "run": PLAIN, "method": "grad_cam"})
    labels, titles = _probe_texts(dash)
    probes = plain["probes"]
    assert labels == [NAMES[p["label"]] for p in probes]
    assert titles == [
        f"label: {NAMES[p['label']]} · predicted: {NAMES[p['prediction']]} · score: {p['score']:.3f}"
        for p in probes
    ]
    assert dash.frame.evaluate("document.querySelectorAll('section.page b').length") == 0
    # Without class_names: the class numbers.
    fit = logs[1]["json/attribution/grad_cam"][-1].value
    assert fit["class_names"] is None
    dash.open({"page": "attribution", "run": RUN, "method": "grad_cam"})
    labels, titles = _probe_texts(dash)
    assert labels == [str(p["label"]) for p in fit["probes"]]
    assert [t.split(" · score")[0] for t in titles] == [
        f"label: {p['label']} · predicted: {p['prediction']}" for p in fit["probes"]
    ]
