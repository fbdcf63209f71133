"""Runs a real `tensorboard` process (Rust data server and `--load_fast=false`) with the cnnvis tab.

Checks that TensorBoard loads the plugin from its entry point and serves the written records.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

import plugin_fixtures as pf
from keras_cnnvis.cli.board import SAMPLING
from plugin_fixtures import fetch, get_json

DEMO = "demo/cnnvis"
MANY = "many/cnnvis"
ALL = "--samples_per_plugin=" + SAMPLING  # what `cnnvis board` passes
MODES = {"rust": ("--load_fast=true", ALL), "python": ("--load_fast=false", ALL)}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("cnnvis_process_logs")
    return str(logdir), pf.write_logdir(str(logdir))


@pytest.fixture(scope="module")
def servers(logs):
    """Both TensorBoard processes, started together so their start-up overlaps."""
    with contextlib.ExitStack() as stack:
        started = {
            mode: stack.enter_context(pf.TensorBoardProcess(logs[0], args))
            for mode, args in MODES.items()
        }
        for server in started.values():
            server.wait_ready()
        yield started


@pytest.mark.parametrize("mode", list(MODES))
def test_tab_is_listed_and_loads_as_es_module(servers, mode):
    server = servers[mode]
    status, _, body = server.get("/data/plugins_listing")
    listing = json.loads(body)["cnnvis"]
    assert status == 200 and listing["enabled"] is True
    assert listing["loading_mechanism"]["module_path"] == "/data/plugin/cnnvis/index.js"
    status, content_type, body = fetch(server, "index.js")
    assert status == 200 and content_type.startswith("text/javascript")
    assert b"export async function render" in body
    status, _, body = server.get("/data/plugin_entry.html", name="cnnvis")
    assert status == 200 and b'import("./index.js")' in body


@pytest.mark.parametrize("mode", list(MODES))
def test_routes_serve_the_written_records(servers, logs, mode):
    server, written = servers[mode], logs[1]
    runs = get_json(server, "runs")["runs"]
    assert [r["run"] for r in runs] == sorted(written)
    demo = written[DEMO]
    health = get_json(server, "data", run=DEMO, tag="json/health/block2/conv2", step=3)
    assert health == demo.json["json/health/block2/conv2"][3]
    embedding = get_json(server, "data", run=DEMO, tag="json/embedding/tsne", step=5)
    assert embedding == demo.json["json/embedding/tsne"][5]
    steps = get_json(server, "steps", run=DEMO, tag="activations/conv1")
    assert steps["steps"] == [0, 1, 2, 3, 4, 5] and steps["counts"] == [4] * 6
    status, content_type, body = fetch(
        server, "image", run=DEMO, tag="activations/conv1", step=4, index=3
    )
    assert status == 200 and content_type == "image/png"
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(body))), demo.images["activations/conv1"][4][3]
    )
    series = get_json(server, "scalars", run=DEMO, tag="health/conv1/mean_change")["series"][0]
    written_series = demo.scalars["health/conv1/mean_change"]
    assert series["steps"] == sorted(written_series)
    assert series["values"] == pytest.approx([written_series[s] for s in series["steps"]], rel=1e-6)


@pytest.mark.parametrize("mode", list(MODES))
def test_samples_per_plugin_zero_serves_every_step(servers, mode):
    server = servers[mode]
    for tag in ("json/filters/conv1", "filters/conv1"):
        assert get_json(server, "steps", run=MANY, tag=tag)["steps"] == list(range(15))


@pytest.mark.parametrize("mode", list(MODES))
def test_bad_requests_are_json_4xx(servers, mode):
    server = servers[mode]
    cases = [
        ("image", {"run": DEMO, "tag": "filters/conv1", "step": "x", "index": 0}, 400),
        ("image", {"run": DEMO, "tag": "filters/conv1", "step": 1, "index": 5}, 404),
        ("data", {"run": "../../etc/passwd", "tag": "json/health/conv1", "step": 1}, 404),
        ("steps", {"run": pf.XSS_RUN, "tag": "activations/conv1"}, 404),
    ]
    for route, params, code in cases:
        status, content_type, body = fetch(server, route, **params)
        assert status == code, (route, params, body)
        assert content_type.startswith("application/json") and json.loads(body)["error"]


def test_html_like_run_name_is_served_verbatim(servers, logs):
    server = servers["rust"]
    steps = get_json(server, "steps", run=pf.XSS_RUN, tag="filters/conv1")
    assert steps["run"] == pf.XSS_RUN
    assert steps["steps"] == sorted(logs[1][pf.XSS_RUN].images["filters/conv1"])


@pytest.mark.parametrize("mode", list(MODES))
def test_stock_images_and_scalars_dashboards_serve_every_step(servers, logs, mode):
    # `cnnvis board`'s sampling must keep TensorBoard's own tabs working too.
    server, written = servers[mode], logs[1][MANY]
    status, _, body = server.get(
        "/data/plugin/images/images", run=MANY, tag="filters/conv1", sample=0
    )
    assert status == 200, body[:300]
    images = json.loads(body)
    assert [i["step"] for i in images] == list(range(15))
    status, _, png = server.get("/data/plugin/images/individualImage?" + images[-1]["query"])
    assert status == 200 and png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(png)).convert("RGB")),
        written.images["filters/conv1"][14][0],
    )
    status, _, body = server.get(
        "/data/plugin/scalars/scalars", run=MANY, tag="health/conv1/mean_change"
    )
    assert status == 200, body[:300]
    points = json.loads(body)
    assert [p[1] for p in points] == list(range(15))
    np.testing.assert_allclose([p[2] for p in points], [1 / (s + 1) for s in range(15)], rtol=1e-6)
