"""The Health page in headless Chromium on a real fit with a frozen nested base: frozen layers
get a neutral badge of their own, trend labels and sparklines sit in the same columns on every
row (also where a layer lacks a score), and every number has 3 significant digits."""

from __future__ import annotations

import os
import re

import keras
import numpy as np
import pytest

from browser_session import require_browser, served_dashboard
from eventfiles import read_run
from keras_cnnvis import datasets
from keras_cnnvis.callbacks import FilterHealthCallback

require_browser()

RUN = "frozen/cnnvis"
LAYERS = ["base/b1", "base/b2", "top", "head"]


def frozen_base_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="b1"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="b2"),
        ],
        name="base",
    )
    base.trainable = False
    i = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="top")(base(i))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(i, keras.layers.Dense(5, activation="softmax", name="head")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("health_browser"))
    x, y, _ = datasets.shapes(64, size=32, seed=0)
    cb = FilterHealthCallback(os.path.join(logdir, "frozen"), probe=x[:8], on_error="raise")
    frozen_base_model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    return logdir, read_run(os.path.join(logdir, RUN))


@pytest.fixture(scope="module")
def dash(logs):
    with served_dashboard(logs[0]) as board:
        yield board


def open_health(dash, layer):
    dash.open({"page": "health", "run": RUN, "layer": layer, "step": 2})
    dash.wait(
        "n => document.querySelectorAll('.overview .verdict').length === n && "
        "document.querySelectorAll('.overview .health-trend').length > 0 && "
        "![...document.querySelectorAll('.trend-cell')].some(c => c.textContent === '…')",
        len(LAYERS),
    )


def test_frozen_layers_have_a_neutral_badge_of_their_own(dash, logs, shots):
    _, run = logs
    open_health(dash, "base/b1")
    badges = dash.frame.eval_on_selector_all(
        ".overview tbody tr",
        "rows => rows.map(r => [r.dataset.layer, r.querySelector('.verdict').className, "
        "r.querySelector('.verdict').textContent])",
    )
    records = {p: run[f"json/health/{p}"][-1].value for p in LAYERS}
    assert sorted(b[0] for b in badges) == sorted(LAYERS)
    for layer, tone, text in badges:
        rec = records[layer]
        assert text == rec["verdict"]
        if layer.startswith("base/"):
            assert rec["frozen"] is True and rec["converged"] is True
            assert text.startswith("frozen") and tone == "verdict frozen", (layer, text)
        else:
            assert rec["frozen"] is False and tone != "verdict frozen", (layer, text)
    # Neutral: neither the red of a failing layer nor the amber of findings.
    colours = dash.frame.evaluate("""() => {
          const probe = (cls) => {
            const s = document.createElement('span');
            s.className = cls;
            document.body.append(s);
            const c = getComputedStyle(s).backgroundColor;
            s.remove();
            return c;
          };
          return ['verdict frozen', 'verdict bad', 'verdict mid', 'verdict good'].map(probe);
        }""")
    assert len(set(colours)) == 4, colours
    detail = dash.frame.inner_text(".health-detail p")
    assert detail.startswith("Verdict: frozen")
    dash.page.screenshot(path=os.path.join(shots, "health_frozen.png"))


def test_trend_labels_and_sparklines_line_up_across_rows(dash, logs):
    _, run = logs
    open_health(dash, "top")
    cells = dash.frame.eval_on_selector_all(
        ".overview tbody tr",
        """rows => rows.map(r => [...r.querySelectorAll('.health-trend')].map(t => ({
            score: t.dataset.score,
            missing: t.classList.contains('missing'),
            label: Math.round(t.querySelector('.trend-name').getBoundingClientRect().left),
            line: t.querySelector('svg') ? Math.round(t.querySelector('svg').getBoundingClientRect().left) : null,
            value: Math.round((t.querySelector('.trend-value') || t.querySelector('.trend-none')).getBoundingClientRect().right),
        })))""",
    )
    # The same columns, in the same order, on every row.
    scores = [c["score"] for c in cells[0]]
    assert all([c["score"] for c in row] == scores for row in cells)
    assert scores[:2] == ["noise_like_fraction", "dead_fraction"]
    # The Dense head has no structure score: its slot is kept, empty.
    order = dash.frame.eval_on_selector_all(
        ".overview tbody tr", "rows => rows.map(r => r.dataset.layer)"
    )
    head = cells[order.index("head")]
    assert head[0]["missing"] and "health/head/noise_like_fraction" not in run
    for k in range(len(scores)):
        column = [row[k] for row in cells]
        assert len({c["label"] for c in column}) == 1, column
        assert len({c["value"] for c in column}) == 1, column
        lines = {c["line"] for c in column if not c["missing"]}
        assert len(lines) == 1, column
    # Sparklines start a fixed label width after their labels.
    assert {c["line"] - c["label"] for row in cells for c in row if not c["missing"]} == {120}


SIG3 = re.compile(r"^-?(?:[1-9]\.\d\de-?\d+|0\.0*[1-9]\d\d|[1-9]\.\d\d|[1-9]\d\.\d|[1-9]\d\d)$")


def test_numbers_have_three_significant_digits(dash, logs):
    _, run = logs
    open_health(dash, "base/b2")
    # The formatter by hand: the values that used to read 0.03125 next to 0.1563.
    got = dash.frame.evaluate(
        """() => import('./health.js').then(m => [0.03125, 0.1563, 16, 0, 0.5, 5.16e-11, 1234.5,
            -0.0294, null, true].map(m.fmtNum))"""
    )
    assert got == ["0.0313", "0.156", "16", "0", "0.500", "5.16e-11", "1235", "-0.0294", "–", "yes"]
    texts = dash.frame.eval_on_selector_all(
        ".overview .trend-value, dl.evidence dd, table.filters-table td.num",
        "els => els.map(e => [e.textContent, e.title])",
    )
    assert len(texts) > 50
    for text, exact in texts:
        if exact and not float(exact).is_integer():
            assert SIG3.match(text), (text, exact)
        elif exact:
            assert text == str(int(float(exact))), (text, exact)
    # A value the record holds, as the page shows it.
    evidence = run["json/health/base/b2"][-1].value["evidence"]
    shown = dict(
        zip(
            dash.frame.eval_on_selector_all("dl.evidence dt", "els => els.map(e => e.textContent)"),
            dash.frame.eval_on_selector_all("dl.evidence dd", "els => els.map(e => e.textContent)"),
        )
    )
    assert shown["noise alpha"] == "0.0100" and evidence["noise_alpha"] == 0.01
    assert shown["trainable"] == "no" and shown["n filters"] == "8"
    assert np.isclose(float(shown["signal gain"]), evidence["signal_gain"], rtol=5e-3)
