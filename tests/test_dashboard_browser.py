"""Drives the cnnvis dashboard in headless Chromium against a real TensorBoard process.

Visits every page, checks what it shows, that names are escaped and no console error occurs.
"""

from __future__ import annotations

import os
import urllib.parse

import numpy as np
import pytest

import plugin_fixtures as pf
from browser_session import require_browser, served_dashboard
from keras_cnnvis.summary import LogWriter

require_browser()

DEMO = "demo/cnnvis"
NEAR_DEAD = "near_dead/cnnvis"
# Layers logged by the activations, filters, health and patches callbacks, in the order the model
# computes them (neither alphabetical nor natural order: conv10 < conv2 < relu1 alphabetically).
MODEL_ORDER = ["relu1", "conv2", "conv9", "conv10"]
ORDERED = "ordered/cnnvis"  # with a Network overview: pickers follow the model
UNORDERED = "unordered/cnnvis"  # without one: natural order
# Top-k values of a live, a weak and a near-dead channel (the numbers that used to run
# together as "9.27e-349.27e-34..." and "0.041120.038460.01939"), and how each reads.
NEAR_DEAD_VALUES = [
    [0.2322, 0.2299, 0.2182, 0.2172],
    [0.04112, 0.03846, 0.01939, 0.009954],
    [9.27e-34, 9.27e-34, 0.0, -2.34e-4],
]
NEAR_DEAD_TEXT = [
    ["0.232", "0.230", "0.218", "0.217"],
    ["0.0411", "0.0385", "0.0194", "0.00995"],
    ["≈0", "≈0", "0", "-2.34e-4"],
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("cnnvis_browser_logs")
    runs = pf.write_logdir(str(logdir))
    write_near_dead_run(str(logdir / NEAR_DEAD))
    write_layer_pages_run(str(logdir / ORDERED), network=True)
    write_layer_pages_run(str(logdir / UNORDERED), network=False)
    return str(logdir), runs


NARROW_FIELD = {"receptive_field": {"size": [3, 3], "jump": [1, 1], "start": [-1, -1]}}
# The last layer's field is wider than its 12-px images: its tiles are cut to the band of
# the field that can hold image pixels (`patches.window_band`).
WIDE_FIELD = {
    "receptive_field": {"size": [61, 61], "jump": [8, 8], "start": [-24, -24]},
    "window": {"offset": [20, 20], "size": [20, 20]},
}


def write_layer_pages_run(run_dir: str, network: bool) -> None:
    """Activations, filters, health and patches of MODEL_ORDER's layers (written in reverse
    order, so that no page can rely on the order of the event file), with a Network overview
    (the model's execution order and output shapes) when `network`."""
    writer = LogWriter(run_dir)
    tile = np.random.default_rng(1).integers(0, 255, (1, 12, 12, 3), np.uint8)
    for layer in reversed(MODEL_ORDER):
        writer.images(f"activations/{layer}", tile, 1)
        writer.images(f"filters/{layer}", tile, 1)
        writer.images(f"patches/{layer}", tile, 1)
        health = {"layer": layer, "verdict": "healthy", "converged": True, "problems": []}
        writer.json(
            f"json/health/{layer}",
            {**health, "columns": ["index"], "filters": []},
            1,
            kind="health",
        )
        writer.json(
            f"json/patches/{layer}",
            {
                "layer": layer,
                "k": 1,
                "channels": [0, 1],
                "values": [[1.0], [0.5]],
                "indices": [[0], [1]],
                "n_images": 10,
                **(WIDE_FIELD if layer == MODEL_ORDER[-1] else NARROW_FIELD),
                "view": None,
                "grid": {"rows": 2, "cols": 1, "tile": [5, 5], "pad": 1},
                "tile_view": "patch",
            },
            1,
            kind="patches",
        )
    if network:
        paths = ["image", "conv1", *MODEL_ORDER, "head"]
        layers = [
            {
                "path": p,
                "type": "Conv2D",
                "inputs": [paths[k - 1]] if k else [],
                "shape": [8, 8, 8 * k],
            }
            for k, p in enumerate(paths)
        ]
        writer.json(
            "json/network/overview",
            {"model": "m", "mode": "units", "n_probes": 1, "layers": layers},
            1,
            kind="network",
        )
    writer.close()


def write_near_dead_run(run_dir: str) -> None:
    """One patches record of a 5x5 layer shown in context, with near-zero top values."""
    k, rows = 4, len(NEAR_DEAD_VALUES)
    writer = LogWriter(run_dir)
    grid = np.random.default_rng(0).integers(0, 255, (rows * 89 + 1, k * 89 + 1, 3), np.uint8)
    writer.images("patches/conv1", grid[None], 2)
    positions = [[[8 * j, 5 + j] for j in range(k)] for _ in range(rows)]
    writer.json(
        "json/patches/conv1",
        {
            "layer": "conv1",
            "k": k,
            "channels": [0, 3, 7],
            "values": NEAR_DEAD_VALUES,
            "indices": [[j + 10 * r for j in range(k)] for r in range(rows)],
            "positions": positions,
            "boxes": [[[max(y - 2, 0), x - 2, y + 3, x + 3] for y, x in ch] for ch in positions],
            "n_images": 80,
            "receptive_field": {"size": [5, 5], "jump": [1, 1], "start": [-2, -2]},
            "view": None,
            "grid": {"rows": rows, "cols": k, "tile": [88, 88], "pad": 1, "scale": 1},
            "tile_view": "context",
            "context": {
                "size": [22, 22],
                "image": [64, 64],
                "origins": [[[max(y - 10, 0), max(x - 10, 0)] for y, x in ch] for ch in positions],
                "zoom": 4.0,
            },
        },
        2,
        kind="patches",
    )
    writer.close()


@pytest.fixture(scope="module")
def dash(logs):
    with served_dashboard(logs[0]) as board:
        yield board


def natural_sizes(frame, selector):
    return frame.eval_on_selector_all(
        selector, "els => els.map(e => e.complete ? [e.naturalHeight, e.naturalWidth] : null)"
    )


def test_filters_page(dash, logs, shots):
    written = logs[1][DEMO].images["filters/conv1"]
    dash.open({"page": "filters", "run": DEMO, "layer": "conv1", "step": 5, "cmp": 0})
    dash.wait(
        "() => [...document.querySelectorAll('.compare img')].every(i => i.complete && i.naturalWidth)"
    )
    assert dash.data("images") == "2" and dash.data("steps") == "6"
    h, w = written[5].shape[1:3]
    assert natural_sizes(dash.frame, ".compare img") == [[h, w], [h, w]]
    captions = dash.frame.eval_on_selector_all(
        ".compare figcaption", "els => els.map(e => e.textContent)"
    )
    assert captions == ["Selected: epoch 5", "Compare: epoch 0"]
    dash.wait("() => document.querySelector('.meta').textContent.includes('16 filters')")
    assert "5×5 kernels" in dash.frame.inner_text(".meta")
    dash.page.screenshot(path=os.path.join(shots, "filters.png"))
    # Play from the start: the step advances by itself.
    dash.frame.fill(".stepper input[type=range]", "0")
    dash.frame.click(".stepper .play")
    dash.wait(
        "() => document.querySelector('.compare figcaption').textContent !== 'Selected: epoch 0'"
    )
    dash.frame.click(".stepper .play")
    assert "step=" in dash.frame.evaluate("location.hash")
    # State lives in the entry page's own URL (shareable), not in the <base> path.
    assert "/data/plugin_entry.html?name=cnnvis#" in dash.frame.evaluate("location.href")
    dash.frame.select_option("select#cnnvis-compare", "2")
    dash.wait(
        "() => document.querySelectorAll('.compare figcaption')[1].textContent === 'Compare: epoch 2'"
    )
    assert "cmp=2" in dash.frame.evaluate("location.hash")


def test_health_page(dash, logs, shots):
    payload = logs[1][DEMO].json["json/health/conv1"][5]
    dash.open({"page": "health", "run": DEMO, "layer": "conv1", "step": 5})
    dash.wait("() => document.querySelectorAll('svg.sparkline').length === 6")
    dash.wait(
        "() => document.querySelectorAll('.health-detail img.cnnvis-image').length === 1 && document.querySelector('.health-detail img').complete"
    )
    assert dash.data("rows") == str(len(payload["filters"]))
    flagged = sorted({i for ids in payload["flags"].values() for i in ids})
    rows = dash.frame.eval_on_selector_all(
        "table.filters-table tbody tr.flagged", "els => els.map(e => Number(e.dataset.index))"
    )
    assert sorted(rows) == flagged == [3, 7]
    points = dash.frame.eval_on_selector_all(
        "svg.sparkline", "els => els.map(e => e.dataset.points)"
    )
    assert points == ["6"] * 6
    verdicts = dash.frame.eval_on_selector_all(
        ".overview .verdict", "els => els.map(e => e.textContent)"
    )
    assert verdicts == ["healthy", "healthy"]
    # Coloured by the record's own `converged` and `problems`, not by its wording: two dead
    # filters on a converging layer are a finding (amber), not a failure (red).
    tones = dash.frame.eval_on_selector_all(
        ".overview .verdict", "els => els.map(e => e.className)"
    )
    assert tones == ["verdict mid", "verdict mid"]
    dash.page.screenshot(path=os.path.join(shots, "health.png"))
    # Sort by noise score, ascending then descending.
    scores = {f["index"]: f["noise_score"] for f in payload["filters"]}
    order = sorted(scores, key=scores.get)
    first = "() => Number(document.querySelector('table.filters-table tbody tr').dataset.index)"
    dash.frame.click("table.filters-table th[data-col=noise_score]")
    dash.wait(f"() => ({first})() === {order[0]}")
    dash.frame.click("table.filters-table th[data-col=noise_score]")
    dash.wait(f"() => ({first})() === {order[-1]}")
    assert "sort=noise_score" in dash.frame.evaluate("location.hash")


def test_activations_page(dash, logs, shots):
    written = logs[1][DEMO].images["activations/conv1"]
    dash.open({"page": "activations", "run": DEMO, "layer": "conv1", "probe": 2, "step": 3})
    dash.wait("() => document.querySelectorAll('.filmstrip img[src]').length === 6")
    dash.wait(
        "() => [...document.querySelectorAll('img.cnnvis-image, .filmstrip img, .probe-button img')].every(i => i.complete && i.naturalWidth)"
    )
    assert dash.data("probes") == "4"
    assert dash.frame.eval_on_selector_all(".probe-button", "els => els.length") == 4
    h, w = written[3][2].shape[:2]
    assert natural_sizes(dash.frame, "img.cnnvis-image") == [[h, w]]
    src = dash.frame.get_attribute("img.cnnvis-image", "src")
    assert "index=2" in src and "step=3" in src
    assert dash.frame.inner_text(".filmstrip .frame.current") == "3"
    dash.page.screenshot(path=os.path.join(shots, "activations.png"))


def test_patches_page(dash, logs, shots):
    payload = logs[1][DEMO].json["json/patches/block2/conv2"][5]
    dash.open({"page": "patches", "run": DEMO, "layer": "block2/conv2", "step": 5})
    dash.wait("() => document.querySelectorAll('.row-label').length === 4")
    dash.wait("() => document.querySelectorAll('.filmstrip img[src]').length === 6")
    dash.wait(
        "() => [...document.querySelectorAll('img.cnnvis-image, .filmstrip img')].every(i => i.complete && i.naturalWidth)"
    )
    labels = dash.frame.eval_on_selector_all(".row-label", "els => els.map(e => e.textContent)")
    assert labels == [f"ch {c}" for c in payload["channels"]]
    assert dash.data("rows") == "4"
    # A record without tile_view (older files) is explained as receptive-field patches.
    assert dash.data("tileView") == "patch"
    assert "Receptive field 24×24 px (jump 4): each tile is that field" in dash.frame.inner_text(
        ".meta"
    )
    # How many channels are shown, of how many (the count comes from the layer's activations
    # record: the patches record does not carry it), in a caption of readable width.
    meta = dash.frame.inner_text(".meta")
    assert meta.startswith("Showing 4 of 24 channels: 0–3 (MaxActivatingPatchesCallback(")
    assert dash.data("channels") == "24"
    assert dash.frame.eval_on_selector(".meta", "e => e.getBoundingClientRect().width") <= 700
    shown = value_cells(dash.frame)
    # Three significant digits, trailing zeros kept (5.587 -> "5.59", 2.6 -> "2.60").
    assert [[v for v, _, _ in row] for row in shown] == [
        [f"{v:#.3g}" if v else "0" for v in row] for row in payload["values"]
    ]
    dash.page.screenshot(path=os.path.join(shots, "patches.png"))


def value_cells(frame):
    """Per table row, [text, title, (left, right, top)] of each top-k value element."""
    return frame.eval_on_selector_all(
        "table.data tbody tr",
        """rows => rows.map(r => [...r.querySelectorAll('.values .value')].map(e => {
            const b = e.getBoundingClientRect();
            return [e.textContent, e.title, [b.left, b.right, b.top]];
        }))""",
    )


def test_patches_of_a_field_wider_than_the_image_say_what_the_tiles_show(dash):
    dash.open({"page": "patches", "run": ORDERED, "layer": MODEL_ORDER[-1]})
    meta = dash.frame.inner_text(".meta")
    assert (
        "Receptive field 61×61 px (jump 8), wider than the image: each tile is the 20×20 px of "
        "it that can hold image pixels" in meta
    )
    dash.open({"page": "patches", "run": ORDERED, "layer": MODEL_ORDER[0]})
    assert "Receptive field 3×3 px (jump 1): each tile is that field" in dash.frame.inner_text(
        ".meta"
    )


def test_patches_numbers_never_run_together(dash, shots):
    dash.open({"page": "patches", "run": NEAR_DEAD, "layer": "conv1"})
    dash.wait("() => document.querySelectorAll('table.data tbody tr').length === 3")
    shown = value_cells(dash.frame)
    # One element per value, a fixed 3 significant digits, near-zero values as "≈0".
    assert [[text for text, _, _ in row] for row in shown] == NEAR_DEAD_TEXT
    # The exact value is in the tooltip.
    for row, values in zip(shown, NEAR_DEAD_VALUES):
        assert [float(title) for _, title, _ in row] == values
        # Neighbours on one line have a visible gap (the text never touches).
        for (_, _, (_, right, top)), (_, _, (left, _, top2)) in zip(row, row[1:]):
            if top == top2:
                assert left - right >= 8, row
    # A channel no image lifts above zero says so.
    names = dash.frame.eval_on_selector_all(
        "table.data tbody th", "els => els.map(e => e.textContent)"
    )
    assert names == ["0", "3", "7 inactive"]
    # The caption explains the context view from the record.
    assert dash.data("tileView") == "context"
    meta = dash.frame.inner_text(".meta")
    # No record of the run says how many channels conv1 has: only the shown ones are counted.
    assert meta.startswith("Showing 3 channels: 0, 3, 7. Each row is one channel")
    assert "Receptive field 5×5 px (jump 1): small next to the 64×64 image" in meta
    assert "each tile shows the 22×22 px around the field (enlarged ×4), framed in yellow" in meta
    dash.page.screenshot(path=os.path.join(shots, "patches_near_dead.png"))


def test_layer_pickers_follow_the_model(dash):
    """Every page with a layer picker lists the layers as the model computes them when the run's
    Network overview says so, else in natural order ("conv9" before "conv10"); the first listed
    is the one shown by default. Patches count the channels from the overview's shapes."""
    natural = ["conv2", "conv9", "conv10", "relu1"]
    for run, order in ((ORDERED, MODEL_ORDER), (UNORDERED, natural)):
        for page in ("filters", "activations", "patches", "health"):
            dash.open({"page": page, "run": run})
            assert dash.data("layer") == order[0], (run, page)
            if page == "health":
                shown = dash.frame.eval_on_selector_all(
                    "table.overview tbody tr", "rs => rs.map(r => r.dataset.layer)"
                )
            else:
                shown = dash.frame.eval_on_selector_all(
                    "#cnnvis-layer option", "os => os.map(o => o.value)"
                )
            assert shown == order, (run, page, shown)
    dash.open({"page": "patches", "run": ORDERED, "layer": "conv9"})
    dash.wait("() => document.querySelector('.meta').textContent.startsWith('Showing')")
    assert dash.frame.inner_text(".meta").startswith("Showing 2 of 32 channels: 0, 1 (")
    dash.open({"page": "patches", "run": UNORDERED, "layer": "conv9"})
    dash.wait("() => document.querySelector('.meta').textContent.startsWith('Showing')")
    assert dash.frame.inner_text(".meta").startswith("Showing 2 channels: 0, 1. Each row")


def test_attribution_page(dash, logs, shots):
    dash.open({"page": "attribution", "run": DEMO, "method": "grad_cam", "alpha": 0.5})
    dash.wait("() => document.querySelector('section.page').dataset.drawn === '24'")
    assert dash.data("failed") == "0"
    assert dash.frame.eval_on_selector_all("td.cell canvas", "els => els.length") == 24
    # The maps that are zero everywhere (the fixture's probe 1 from step 3) are said so.
    records = logs[1][DEMO].json["json/attribution/grad_cam"]
    zero = sorted(
        (step, i) for step, r in records.items() for i, m in enumerate(r["maps"]) if not any(m)
    )
    assert zero == [(3, 1), (4, 1), (5, 1)]
    badged = dash.frame.eval_on_selector_all(
        "td.cell.zero-map",
        "els => els.map(e => [+e.dataset.step, +e.dataset.probe, e.innerText, e.title])",
    )
    assert sorted((s, i) for s, i, _, _ in badged) == zero and dash.data("zero") == "3"
    assert all(text == "all 0" and "zero everywhere" in title for _, _, text, title in badged)
    pixel = "() => Array.from(document.querySelector('td.cell canvas').getContext('2d').getImageData(48, 48, 1, 1).data)"
    before = dash.frame.evaluate(pixel)
    dash.page.screenshot(path=os.path.join(shots, "attribution.png"))
    dash.frame.fill("#cnnvis-alpha", "1")
    dash.wait(f"() => JSON.stringify(({pixel})()) !== JSON.stringify({before})")
    assert "alpha=1" in dash.frame.evaluate("location.hash")
    spaced = dash.frame.evaluate(
        "async () => (await import('./util.js')).spacedSteps([...Array(100).keys()], 12)"
    )
    assert spaced == list(range(0, 100, 9))  # 12 evenly spaced, the first and the last
    dash.frame.click(".segmented button[data-method=saliency]")
    dash.frame.wait_for_selector('section.page[data-method="saliency"][data-state="ready"]')
    dash.wait("() => document.querySelector('section.page').dataset.drawn === '24'")


def test_embeddings_page(dash, logs, shots):
    payload = logs[1][DEMO].json["json/embedding/tsne"][5]
    dash.open({"page": "embeddings", "run": DEMO, "emb": "tsne", "step": 5})
    dash.wait("() => document.querySelector('canvas.scatter').dataset.points === '90'")
    dash.frame.wait_for_timeout(600)  # let the sprite image load
    x, y = map(float, dash.frame.get_attribute("canvas.scatter", "data-point0").split(","))
    dash.frame.hover("canvas.scatter", position={"x": x, "y": y})
    dash.frame.wait_for_selector(".tooltip:not([hidden])")
    text = dash.frame.inner_text(".tooltip")
    assert f"label: {payload['class_names'][payload['labels'][0]]}" in text
    assert dash.frame.eval_on_selector_all(".tooltip canvas", "els => els.length") == 1
    legend = dash.frame.eval_on_selector_all(".legend-item", "els => els.map(e => e.textContent)")
    assert legend == payload["class_names"]
    dash.page.screenshot(path=os.path.join(shots, "embeddings.png"))
    dash.frame.click(".segmented button[data-color=prediction]")
    assert "color=prediction" in dash.frame.evaluate("location.hash")
    pressed = dash.frame.eval_on_selector_all(
        ".segmented button", "els => els.map(e => [e.dataset.color, e.ariaPressed, e.className])"
    )
    assert pressed == [["class", "false", ""], ["prediction", "true", "current"]]
    dash.frame.fill(".stepper input[type=range]", "0")
    dash.wait("() => location.hash.includes('step=1')")
    dash.wait("() => document.querySelector('canvas.scatter').dataset.points === '90'")


def test_shared_page_pieces(dash, logs):
    """The pieces every page uses (page.js, util.js), called in the browser on the served logs."""
    run = logs[1][DEMO]
    got = dash.frame.evaluate(
        """async (run) => {
        const { nearestStep } = await import('./util.js');
        const page = await import('./page.js');
        const near = [[[0, 2, 5], 4], [[0, 2, 5], 5], [[0, 2, 5], 99], [[3, 7], 1],
                      [[0, 2, 5], null], [[0, 2, 5], 'x'], [[0, 2, 5], '2'], [[], 1]];
        const probes = await page.probeImages(run, ['probes']);
        const ctx = { run, alive: () => true };
        // A late answer must not replace a newer image: the second URL is already loaded, the
        // first one is not, so without that rule the first would land last.
        const panel = page.imagePanel(ctx, { maxWidth: 100 });
        const url = (step) => `image?run=${encodeURIComponent(run)}&tag=filters%2Fconv1&step=${step}&index=0`;
        await panel.show(url(0), 'epoch 0');
        const img = await new Promise((resolve) => {
          const i = new Image(); i.onload = () => resolve(i); i.src = url(4);
        });
        await Promise.all([panel.show(url(3), 'epoch 3'), panel.show(url(4), 'epoch 4')]);
        return {
          near: near.map(([steps, wanted]) => nearestStep(steps, wanted)),
          late: await page.recordAt(run, 'json/health/conv1', 99),
          early: await page.recordAt(run, 'json/embedding/tsne', 0),
          between: await page.stepAt(run, 'json/health/conv1', 3),
          probeSteps: probes.steps,
          probe3: page.probeUrl(run, probes, 3, 5),
          probe4: page.probeUrl(run, probes, 4, 5),
          panel: [panel.el.querySelector('img').src.includes('step=4'),
                  panel.el.querySelector('figcaption').textContent],
          loaded: img.naturalWidth > 0,
        };
    }""",
        DEMO,
    )
    # The step asked for, else the last logged before it, else (nothing before) the first.
    assert got["near"] == [2, 5, 5, 3, 5, 5, 2, None]
    assert got["late"] == {"step": 5, "payload": run.json["json/health/conv1"][5]}
    assert run.steps("json/embedding/tsne")[0] == 1
    assert got["early"] == {"step": 1, "payload": run.json["json/embedding/tsne"][1]}
    assert got["between"] == 3
    # Probe images are logged once, at the first step; later steps show those.
    assert got["probeSteps"] == [0] and "step=0" in got["probe3"] and "index=3" in got["probe3"]
    assert got["probe4"] is None  # only 4 probes
    assert got["loaded"] and got["panel"] == [True, "epoch 4"]


def test_pickers_reopen_the_page_on_their_choice(dash):
    """Layer and method pickers, probe buttons and overview rows keep the step they were at."""
    ready = "section.page[data-page='{}'][data-state='ready'][data-{}='{}']"
    dash.open({"page": "patches", "run": DEMO, "layer": "block2/conv2", "step": 3})
    dash.frame.select_option("select#cnnvis-layer", "conv1")
    dash.frame.wait_for_selector(ready.format("patches", "layer", "conv1"))
    assert dash.frame.inner_text(".step-label").startswith("epoch 3 ")
    assert "layer=conv1" in dash.frame.evaluate("location.hash")
    dash.open({"page": "activations", "run": DEMO, "layer": "block2/conv2", "step": 4})
    dash.frame.click(".probe-button[data-probe='1']")
    dash.frame.wait_for_selector(".probe-button.current[data-probe='1']")
    src = dash.frame.get_attribute("img.cnnvis-image", "src")
    assert "tag=activations%2Fblock2%2Fconv2" in src and "step=4" in src and "index=1" in src
    dash.open({"page": "health", "run": DEMO, "layer": "conv1", "step": 2})
    dash.frame.click("table.overview tr[data-layer='block2/conv2']")
    dash.frame.wait_for_selector(ready.format("health", "layer", "block2/conv2"))
    assert dash.frame.inner_text(".health-detail h3") == "Layer block2/conv2"
    assert "(epoch 2)" in dash.frame.inner_text(".health-detail")
    dash.open({"page": "embeddings", "run": DEMO, "emb": "tsne", "step": 3})
    dash.frame.select_option("select#cnnvis-emb-method", "pca")
    dash.frame.wait_for_selector(ready.format("embeddings", "method", "pca"))
    dash.wait("() => document.querySelector('.meta').textContent.includes('epoch 3')")


def test_pages_without_data_say_so(dash):
    section = dash.open({"page": "embeddings", "run": "many/cnnvis"}, expect="empty")
    assert "“many/cnnvis” has no embeddings" in section.inner_text()
    assert "budget=None logs everything" in section.inner_text()  # why it may be empty
    section = dash.open({"page": "health", "run": "many/cnnvis"}, expect="empty")
    assert "has no filter-health records" in section.inner_text()


def test_html_like_run_name_is_shown_as_text(dash):
    section = dash.open({"page": "filters", "run": pf.XSS_RUN})
    options = dash.frame.eval_on_selector_all(
        "#cnnvis-run option", "els => els.map(e => e.textContent)"
    )
    assert pf.XSS_RUN in options
    assert dash.frame.eval_on_selector("#cnnvis-run", "e => e.value") == pf.XSS_RUN
    dash.wait("() => document.querySelector('.compare img').complete")
    section = dash.open({"page": "attribution", "run": pf.XSS_RUN}, expect="empty")
    assert f"“{pf.XSS_RUN}”" in section.inner_text()
    assert dash.frame.eval_on_selector_all("img[src='x']", "els => els.length") == 0
    assert dash.frame.evaluate("document.body.innerHTML.includes('<img src=x')") is False
    assert dash.dialogs == []


def test_view_state_is_restored_from_the_url(dash):
    url = (
        dash.url
        + "/data/plugin_entry.html?name=cnnvis#"
        + urllib.parse.urlencode(
            {"page": "health", "run": DEMO, "layer": "block2/conv2", "step": 2}
        )
    )
    page = dash.page.context.browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    # The stand-alone entry page has no favicon (TensorBoard's own page does): ignore that 404.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url)
        page.wait_for_selector(
            'section.page[data-page="health"][data-state="ready"]', timeout=20000
        )
        assert page.eval_on_selector("section.page", "e => e.dataset.layer") == "block2/conv2"
        assert page.inner_text(".step-label").startswith("epoch 2 ")
        page.wait_for_selector(".health-detail h3")
        assert page.inner_text(".health-detail h3") == "Layer block2/conv2"
        assert errors == []
    finally:
        page.close()
