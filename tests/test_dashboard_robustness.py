"""The Robustness page on the records of a real fit with RobustnessCallback: the plugin's routes
serve exactly what was written, and headless Chromium shows the heatmap, the severity curves
and the corrupted examples of the chosen epoch, with class names shown as text.
"""

from __future__ import annotations

import os
import urllib.parse

import keras
import numpy as np
import pytest

from browser_session import served_dashboard
from eventfiles import read_run
from keras_cnnvis.callbacks import RobustnessCallback
from plugin_fixtures import fetch, get_json, make_client

RUN = "robust/cnnvis"
NAMES = ["<b>red</b>", "green & co", '"blue"']
CORRUPTIONS = ["gaussian_noise", "fog", "contrast"]
SEVERITIES = [1, 3, 5]
N_PROBES = 3


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """A 3-epoch fit logging robustness every epoch, and what it wrote."""
    logdir = tmp_path_factory.mktemp("robustness_logs")
    rng = np.random.default_rng(1)
    y = np.arange(90) % 3
    x = rng.random((90, 16, 16, 3), dtype=np.float32) * 0.4
    x[np.arange(90), :, :, y] += 0.5
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(i))
    model = keras.Model(i, keras.layers.Dense(3, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    cb = RobustnessCallback(
        str(logdir / "robust"),
        (x, y),
        corruptions=CORRUPTIONS,
        severities=SEVERITIES,
        n_examples=45,
        n_adversarial=9,
        pgd_steps=2,
        n_probes=N_PROBES,
        class_names=NAMES,
        on_error="raise",
    )
    model.fit(x, y, epochs=3, batch_size=15, verbose=0, callbacks=[cb])
    return str(logdir), read_run(str(logdir / RUN))


def test_routes_serve_the_records_as_written(logs):
    logdir, written = logs
    client = make_client(logdir, {"cnnvis": 0, "images": 0, "scalars": 0})
    runs = get_json(client, "runs")
    assert {"run": RUN, "kinds": ["robustness"]} in runs["runs"]
    tags = get_json(client, "tags", run=RUN, kind="robustness")
    assert tags["images"] == {"examples": "robustness/examples", "heatmap": "robustness/heatmap"}
    assert tags["json"] == {
        "examples": "json/robustness/examples",
        "heatmap": "json/robustness/heatmap",
    }
    scalars = {t for group in tags["scalars"].values() for t in group}
    assert scalars == {
        t for t in written if t.startswith("robustness/") and written[t][0].plugin == "scalars"
    }
    for name in ("heatmap", "examples"):
        info = get_json(client, "steps", run=RUN, tag=f"json/robustness/{name}")
        assert info["steps"] == [0, 1, 2, 3]
        for record in written[f"json/robustness/{name}"]:
            payload = get_json(
                client, "data", run=RUN, tag=f"json/robustness/{name}", step=record.step
            )
            assert payload == record.value
    info = get_json(client, "steps", run=RUN, tag="robustness/examples")
    count = info["counts"][0]
    assert info["counts"] == [N_PROBES * (1 + len(CORRUPTIONS) * len(SEVERITIES))] * 4
    status, _, png = fetch(
        client, "image", run=RUN, tag="robustness/examples", step=3, index=count - 1
    )
    assert status == 200 and png.startswith(b"\x89PNG")
    assert fetch(client, "image", run=RUN, tag="robustness/examples", step=3, index=count)[0] == 404
    assert fetch(client, "tags", run=RUN, kind="robustnes")[0] == 400
    assert fetch(client, "data", run=RUN, tag="json/robustness/heatmap", step="-1")[0] == 400
    assert fetch(client, "data", run=RUN, tag="json/robustness/missing", step=0)[0] == 404


@pytest.fixture(scope="module")
def dash(logs):
    flags = ("--samples_per_plugin=cnnvis=0,images=0,scalars=0",)
    with served_dashboard(logs[0], flags, height=2000) as board:
        yield board


def heat_titles(frame):
    return frame.eval_on_selector_all(
        "table.robustness-heatmap tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => Number(td.title)))",
    )


def test_page_shows_the_epoch_on_the_slider(dash, logs, shots):
    frame = dash.frame
    records = {r.step: r.value for r in logs[1]["json/robustness/heatmap"]}
    examples = {r.step: r.value for r in logs[1]["json/robustness/examples"]}
    dash.open({"page": "robustness", "run": RUN, "corruption": "fog"})
    dash.wait(
        "() => [...document.querySelectorAll('td.example img')].every(i => i.complete && i.naturalWidth)",
    )
    assert frame.evaluate("document.querySelector('section.page').dataset.step") == "3"
    # The heatmap: one row per corruption, clean first, the severities, then their mean.
    last = records[3]
    expected = [[last["clean"], *row, np.mean(row)] for row in last["accuracy"]]
    np.testing.assert_allclose(heat_titles(frame), expected)
    names = frame.eval_on_selector_all(
        "table.robustness-heatmap tbody th", "e => e.map(x => x.textContent)"
    )
    assert names == ["gaussian noise", "fog", "contrast"]
    # Small multiples: the mean and one chart per corruption, a line per epoch, the
    # slider's epoch highlighted.
    charts = frame.eval_on_selector_all(
        "svg.severity-chart",
        "svgs => svgs.map(s => [s.querySelectorAll('path.epoch').length, s.querySelector('path.current').dataset.step])",
    )
    assert charts == [[4, "3"]] * 4
    summary = frame.inner_text("dl.robustness-summary")
    assert f"{100 * last['clean']:.1f}%" in summary and "mCE vs epoch 0" in summary
    # PGD attacks a subset: its size, and the clean accuracy of those images (epsilon 0)
    # before the attacked ones, so an attack never seems to raise accuracy unexplained.
    adv = last["adversarial"]
    assert adv["count"] == 9 and last["count"] == 45 and adv["epsilons"][0] == 0
    steps = [
        f"ε {round(e * 255)}/255 {100 * a:.1f}%" if e else f"clean {100 * a:.1f}%"
        for e, a in zip(adv["epsilons"], adv["accuracy"])
    ]
    assert all(abs(e * 255 - round(e * 255)) < 1e-6 for e in adv["epsilons"])
    assert f"PGD on 9 of 45 images\n{' → '.join(steps)}" in summary
    trend_names = frame.eval_on_selector_all(
        ".robustness-trends .trend-name", "e => e.map(x => x.textContent)"
    )
    pgd = [f"PGD accuracy at ε = {round(e * 255)}/255 (9 images)" for e in adv["epsilons"] if e]
    assert trend_names[-len(pgd) :] == pgd
    # The examples of the corruption in the URL: clean, then its severities, per probe.
    ex = examples[3]
    srcs = frame.eval_on_selector_all(
        "td.example img", "imgs => imgs.map(i => i.getAttribute('src'))"
    )
    fog = CORRUPTIONS.index("fog")
    rows = [0] + [1 + fog * len(SEVERITIES) + s for s in range(len(SEVERITIES))]
    assert [int(urllib.parse.parse_qs(s)["index"][0]) for s in srcs] == [
        row * N_PROBES + probe for probe in range(N_PROBES) for row in rows
    ]
    captions = frame.eval_on_selector_all("td.example .caption", "e => e.map(x => x.textContent)")
    predicted = [ex["predictions"][row][probe] for probe in range(N_PROBES) for row in rows]
    assert [c.rsplit(" ", 1)[0] for c in captions] == [NAMES[k] for k in predicted]
    right = frame.eval_on_selector_all(
        "td.example", "e => e.map(x => x.classList.contains('right'))"
    )
    assert right == [
        k == ex["labels"][probe]
        for probe in range(N_PROBES)
        for k in [ex["predictions"][row][probe] for row in rows]
    ]
    assert (
        frame.evaluate("document.querySelectorAll('section.page b').length") == 0
    )  # text, not HTML
    labels = frame.eval_on_selector_all(
        "table.robustness-examples tbody th", "e => e.map(x => x.textContent)"
    )
    assert labels == NAMES  # one probe per class, in class order
    dash.page.screenshot(path=os.path.join(shots, "robustness.png"))
    # Back to the first record: its table, and the first epoch highlighted.
    frame.fill(".stepper input[type=range]", "0")
    dash.wait("() => document.querySelector('section.page').dataset.step === '0'")
    first = records[0]
    np.testing.assert_allclose(
        heat_titles(frame), [[first["clean"], *row, np.mean(row)] for row in first["accuracy"]]
    )
    assert "step=0" in frame.evaluate("location.hash")
    # Another corruption from the picker.
    frame.select_option("select#cnnvis-corruption", "contrast")
    dash.wait("() => location.hash.includes('corruption=contrast')")
    dash.wait("() => document.querySelector('td.example img[alt^=\"contrast\"]') !== null")
    index = int(
        urllib.parse.parse_qs(frame.get_attribute("td.example:nth-child(3) img", "src"))["index"][0]
    )
    assert index == (1 + CORRUPTIONS.index("contrast") * len(SEVERITIES)) * N_PROBES
