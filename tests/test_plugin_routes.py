"""Tests the cnnvis plugin's HTTP routes on real event files read through TensorBoard's multiplexer.

Logs are written with keras_cnnvis.summary.LogWriter (tests/plugin_fixtures.py); no mocks.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboard import default as tb_default
from tensorboard import errors as tb_errors
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider
from tensorboard.plugins import base_plugin

import plugin_fixtures as pf
import tensorboard_plugin_cnnvis
from plugin_fixtures import PREFIX, get_json, make_client, url
from tensorboard_plugin_cnnvis import plugin as plugin_lib
from tensorboard_plugin_cnnvis import reader

DEMO = "demo/cnnvis"
MANY = "many/cnnvis"
PACKAGE_DIR = os.path.dirname(tensorboard_plugin_cnnvis.__file__)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("cnnvis_logs")
    return logdir, pf.write_logdir(str(logdir))


@pytest.fixture(scope="module")
def client(logs):
    return make_client(logs[0], {"cnnvis": 0, "images": 0})


def kinds_written(run: pf.WrittenRun) -> list[str]:
    kinds = {tag.split("/")[0] for tag in run.images} | {tag.split("/")[1] for tag in run.json}
    return sorted(kinds)


# Plugin registration ----------------------------------------------------------------------


def test_entry_point_resolves_to_plugin_class():
    loaded = tb_default.get_dynamic_plugins()
    assert plugin_lib.CNNVisPlugin in loaded
    loader = application.make_plugin_loader(plugin_lib.CNNVisPlugin)
    assert isinstance(loader, base_plugin.BasicLoader)
    assert issubclass(plugin_lib.CNNVisPlugin, base_plugin.TBPlugin)


def test_plugins_listing_and_entry_page(client):
    listing = get_json(client, "/data/plugins_listing")["cnnvis"]
    assert listing["enabled"] is True
    assert listing["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/cnnvis/index.js",
    }
    page = client.get("/data/plugin_entry.html?name=cnnvis").get_data(as_text=True)
    assert 'import("./index.js")' in page and '<base href="plugin/cnnvis/" />' in page


def test_data_plugin_names_and_inactive_without_data(tmp_path):
    empty = make_client(tmp_path, {})
    assert get_json(empty, "/data/plugins_listing")["cnnvis"]["enabled"] is False
    assert get_json(empty, "runs") == {"runs": []}
    response = empty.get(url("tags", run=DEMO, kind="filters"))
    assert response.status_code == 404


def test_plugin_imports_neither_tensorflow_nor_keras():
    code = (
        "import sys, tensorboard_plugin_cnnvis.plugin\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    sources = [
        os.path.join(PACKAGE_DIR, name) for name in os.listdir(PACKAGE_DIR) if name.endswith(".py")
    ]
    assert len(sources) >= 3
    for path in sources:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("tensorflow", "keras", "keras_cnnvis"), path


# Valid requests ---------------------------------------------------------------------------


def test_runs_lists_each_run_with_its_kinds(client, logs):
    runs = logs[1]
    answer = get_json(client, "runs")["runs"]
    assert [r["run"] for r in answer] == sorted(runs)
    for entry in answer:
        assert entry["kinds"] == kinds_written(runs[entry["run"]])
    assert pf.XSS_RUN in [r["run"] for r in answer]


@pytest.mark.parametrize(
    "kind",
    [
        "filters",
        "activations",
        "health",
        "patches",
        "attribution",
        "embedding",
        "probes",
        "confusion",
        "localization",
    ],
)
def test_tags_of_each_kind(client, logs, kind):
    run = logs[1][DEMO]
    answer = get_json(client, "tags", run=DEMO, kind=kind)
    images = {t.split("/", 1)[1]: t for t in run.images if t.split("/")[0] == kind}
    records = {t.split("/", 2)[2]: t for t in run.json if t.split("/")[1] == kind}
    scalars = sorted(t for t in run.scalars if t.split("/")[0] == kind)
    assert answer["images"] == images
    assert answer["json"] == records
    assert sorted(t for tags in answer["scalars"].values() for t in tags) == scalars
    assert answer["names"] == sorted(set(images) | set(records) | set(answer["scalars"]))
    if kind == "health":
        # Nested layer names keep their slash; scores group under the layer.
        assert answer["scalars"]["block2/conv2"] == [
            "health/block2/conv2/dead_fraction",
            "health/block2/conv2/mean_change",
            "health/block2/conv2/noisy_fraction",
        ]


def test_steps_of_every_image_and_json_tag(client, logs):
    run = logs[1][DEMO]
    for tag, by_step in run.images.items():
        answer = get_json(client, "steps", run=DEMO, tag=tag)
        assert answer["plugin"] == "images"
        assert answer["steps"] == sorted(by_step)
        assert answer["counts"] == [len(by_step[s]) for s in sorted(by_step)]
    for tag, by_step in run.json.items():
        answer = get_json(client, "steps", run=DEMO, tag=tag)
        assert answer["plugin"] == "cnnvis"
        assert answer["steps"] == sorted(by_step)
        assert answer["counts"] == [1] * len(by_step)
    # Probe images are logged once; embeddings start one step later than the rest.
    assert get_json(client, "steps", run=DEMO, tag="probes/images")["steps"] == [0]
    assert get_json(client, "steps", run=DEMO, tag="json/embedding/tsne")["steps"] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_every_image_decodes_to_the_written_pixels(client, logs):
    run = logs[1][DEMO]
    checked = 0
    for tag, by_step in run.images.items():
        for step, batch in by_step.items():
            for index, expected in enumerate(batch):
                response = client.get(url("image", run=DEMO, tag=tag, step=step, index=index))
                assert response.status_code == 200, (tag, step, index)
                assert response.headers["Content-Type"] == "image/png"
                decoded = np.asarray(Image.open(io.BytesIO(response.data)))
                assert decoded.shape[:2] == expected.shape[:2], (tag, step, index)
                if decoded.ndim == 2:
                    decoded = decoded[..., None]
                np.testing.assert_array_equal(decoded, expected, err_msg=f"{tag} {step} {index}")
                checked += 1
    assert checked > 150


def test_every_json_record_round_trips(client, logs):
    run = logs[1][DEMO]
    for tag, by_step in run.json.items():
        for step, payload in by_step.items():
            assert get_json(client, "data", run=DEMO, tag=tag, step=step) == payload
    health = get_json(client, "data", run=DEMO, tag="json/health/conv1", step=5)
    assert health["verdict"] == "healthy"
    assert health["flags"]["dead"] == [3, 7]
    attribution = get_json(client, "data", run=DEMO, tag="json/attribution/grad_cam", step=0)
    assert attribution["size"] == [32, 32] and len(attribution["maps"][0]) == 32 * 32


def test_scalars_one_and_many_tags(client, logs):
    run = logs[1][DEMO]
    tags = [t for t in sorted(run.scalars) if t.startswith("health/conv1/")]
    answer = get_json(client, "scalars", run=DEMO, tag=tags)
    assert [s["tag"] for s in answer["series"]] == tags
    for series in answer["series"]:
        written = run.scalars[series["tag"]]
        assert series["steps"] == sorted(written)
        assert series["values"] == pytest.approx([written[s] for s in sorted(written)], rel=1e-6)
    one = get_json(client, "scalars", run=DEMO, tag="localization/grad_cam/pointing_game")
    assert one["series"][0]["values"][-1] == pytest.approx(0.9)


def test_static_assets_are_served_with_their_types(client):
    index = client.get(f"{PREFIX}/index.js")
    assert index.status_code == 200
    assert index.headers["Content-Type"].startswith("text/javascript")
    source = index.get_data(as_text=True)
    assert "export async function render" in source
    imported = set(re.findall(r'from "\./([\w.-]+\.js)"', source))
    assert {"util.js", "filters.js", "health.js", "embeddings.js"} <= imported
    for name in imported:
        response = client.get(f"{PREFIX}/{name}")
        assert response.status_code == 200 and "export " in response.get_data(as_text=True)
    css = client.get(f"{PREFIX}/style.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert client.get(f"{PREFIX}/plugin.py").status_code == 404
    assert client.get(f"{PREFIX}/../plugin.py").status_code == 404


HTML_PARSERS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "DOMParser",
    "createContextualFragment",
    "srcdoc",
)


def test_dashboard_never_uses_inner_html():
    static = os.path.join(PACKAGE_DIR, "static")
    for name in os.listdir(static):
        with open(os.path.join(static, name), encoding="utf-8") as f:
            text = f.read()
        # Nothing parses a string as HTML: names are text nodes (util.h) or SVG text (charts.svg).
        for parser in HTML_PARSERS:
            assert parser not in text, (name, parser)
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name
        assert "https://" not in text, name


def test_html_like_run_name_round_trips_as_data(client, logs):
    written = logs[1][pf.XSS_RUN]
    runs = get_json(client, "runs")["runs"]
    assert {"run": pf.XSS_RUN, "kinds": ["filters"]} in runs
    tags = get_json(client, "tags", run=pf.XSS_RUN, kind="filters")
    assert tags["run"] == pf.XSS_RUN and tags["images"] == {"conv1": "filters/conv1"}
    steps = get_json(client, "steps", run=pf.XSS_RUN, tag="filters/conv1")
    assert steps["steps"] == sorted(written.images["filters/conv1"])
    response = client.get(url("image", run=pf.XSS_RUN, tag="filters/conv1", step=2, index=0))
    assert response.status_code == 200
    decoded = np.asarray(Image.open(io.BytesIO(response.data)))
    np.testing.assert_array_equal(decoded, written.images["filters/conv1"][2][0])


# Sampling ---------------------------------------------------------------------------------


def test_zero_hint_means_all_samples(client, logs):
    many = logs[1][MANY]
    assert len(many.json["json/filters/conv1"]) == 15
    for tag in ("json/filters/conv1", "filters/conv1"):
        assert get_json(client, "steps", run=MANY, tag=tag)["steps"] == list(range(15))
    series = get_json(client, "scalars", run=MANY, tag="health/conv1/mean_change")["series"][0]
    assert series["steps"] == list(range(15))


def test_positive_hints_are_forwarded(logs):
    keep_all = {"cnnvis": 0, "images": 0, "scalars": 0}
    limited = make_client(logs[0], {"cnnvis": 5, "images": 4, "scalars": 3}, guidance=keep_all)
    json_steps = get_json(limited, "steps", run=MANY, tag="json/filters/conv1")["steps"]
    image_steps = get_json(limited, "steps", run=MANY, tag="filters/conv1")["steps"]
    scalar_steps = get_json(limited, "scalars", run=MANY, tag="health/conv1/mean_change")
    assert len(json_steps) == 5 and json_steps[-1] == 14
    assert len(image_steps) == 4 and image_steps[-1] == 14
    assert len(scalar_steps["series"][0]["steps"]) == 3
    # A step dropped by sampling is reported as missing, not as a server error.
    dropped = next(s for s in range(15) if s not in json_steps)
    response = limited.get(url("data", run=MANY, tag="json/filters/conv1", step=dropped))
    assert response.status_code == 404


def test_without_hints_every_ingested_sample_is_served(logs):
    # TensorBoard's own reservoir keeps 10 tensors per tag when not told otherwise; the plugin
    # itself must not reduce that further (nor send downsample=0).
    default = make_client(logs[0], None)
    steps = get_json(default, "steps", run=MANY, tag="json/filters/conv1")["steps"]
    assert len(steps) == 10 and steps[-1] == 14


def test_downsample_for():
    assert reader.downsample_for(None, "cnnvis") == reader.ALL_SAMPLES
    assert reader.downsample_for({"cnnvis": 0}, "cnnvis") == reader.ALL_SAMPLES
    assert reader.downsample_for({"cnnvis": 7}, "cnnvis") == 7
    assert reader.downsample_for({"images": 7}, "cnnvis") == reader.ALL_SAMPLES


# Refused requests -------------------------------------------------------------------------

TRAVERSAL = "../../etc/passwd"
BAD_REQUESTS = [
    ("tags", {}, 400),
    ("tags", {"run": DEMO}, 400),
    ("tags", {"kind": "filters"}, 400),
    ("tags", {"run": DEMO, "kind": "bogus"}, 400),
    ("tags", {"run": DEMO, "kind": TRAVERSAL}, 400),
    ("tags", {"run": "nope", "kind": "filters"}, 404),
    ("tags", {"run": TRAVERSAL, "kind": "filters"}, 404),
    ("steps", {}, 400),
    ("steps", {"run": DEMO}, 400),
    ("steps", {"run": DEMO, "tag": "filters/nope"}, 404),
    ("steps", {"run": DEMO, "tag": TRAVERSAL}, 404),
    ("steps", {"run": TRAVERSAL, "tag": "filters/conv1"}, 404),
    ("steps", {"run": DEMO, "tag": "health/conv1/dead_fraction"}, 404),
    ("image", {"run": DEMO, "tag": "filters/conv1", "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": 1}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": "abc", "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": -1, "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": "1.5", "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": " 1", "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": "1e3", "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": "9" * 30, "index": 0}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": 1, "index": -1}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": 1, "index": "x"}, 400),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": 99, "index": 0}, 404),
    ("image", {"run": DEMO, "tag": "filters/conv1", "step": 1, "index": 1}, 404),
    ("image", {"run": DEMO, "tag": "activations/conv1", "step": 1, "index": 4}, 404),
    ("image", {"run": DEMO, "tag": "probes/images", "step": 1, "index": 0}, 404),
    ("image", {"run": DEMO, "tag": "json/filters/conv1", "step": 1, "index": 0}, 404),
    ("image", {"run": DEMO, "tag": TRAVERSAL, "step": 1, "index": 0}, 404),
    ("image", {"run": TRAVERSAL, "tag": "filters/conv1", "step": 1, "index": 0}, 404),
    ("image", {"run": "/etc", "tag": "passwd", "step": 0, "index": 0}, 404),
    ("data", {"run": DEMO, "tag": "json/health/conv1"}, 400),
    ("data", {"run": DEMO, "tag": "json/health/conv1", "step": "x"}, 400),
    ("data", {"run": DEMO, "tag": "json/health/conv1", "step": -3}, 400),
    ("data", {"run": DEMO, "tag": "json/health/conv1", "step": 6}, 404),
    ("data", {"run": DEMO, "tag": "json/embedding/pca", "step": 0}, 404),
    ("data", {"run": DEMO, "tag": "health/conv1", "step": 1}, 404),
    ("data", {"run": DEMO, "tag": TRAVERSAL, "step": 1}, 404),
    ("data", {"run": "nope", "tag": "json/health/conv1", "step": 1}, 404),
    ("scalars", {"run": DEMO}, 400),
    ("scalars", {"tag": "health/conv1/dead_fraction"}, 400),
    ("scalars", {"run": DEMO, "tag": "health/conv1/nope"}, 404),
    ("scalars", {"run": DEMO, "tag": ["health/conv1/dead_fraction", TRAVERSAL]}, 404),
    ("scalars", {"run": "nope", "tag": "health/conv1/dead_fraction"}, 404),
    ("scalars", {"run": pf.XSS_RUN, "tag": "health/conv1/dead_fraction"}, 404),
    ("scalars", {"run": DEMO, "tag": [f"t{i}" for i in range(65)]}, 400),
]


@pytest.mark.parametrize("route,params,code", BAD_REQUESTS)
def test_bad_requests_get_json_errors(client, route, params, code):
    response = client.get(url(route, **params))
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.get_data(as_text=True))
    assert set(body) == {"error"} and body["error"]


@pytest.mark.parametrize("route", ["runs", "tags", "steps", "image", "data", "scalars"])
def test_hostile_values_never_cause_server_errors(client, route):
    values = ["", "\x00", "%2e%2e%2f", "é" * 300, "a" * 5000, "null", "[]", "0x10", "\\..\\"]
    for value in values:
        for key in ("run", "tag", "kind", "step", "index"):
            params = {"run": DEMO, "tag": "filters/conv1", "kind": "filters", "step": 1, "index": 0}
            params[key] = value
            response = client.get(url(route, **params))
            assert response.status_code < 500, (route, key, value)
            if response.status_code != 200:
                assert json.loads(response.get_data(as_text=True))["error"]


class _ForgetfulProvider(data_provider.MultiplexerDataProvider):
    """The real provider, except that blobs and tensors vanish after listing (as on reload)."""

    def read_blob(self, ctx=None, *, blob_key):
        raise tb_errors.NotFoundError("blob was purged")

    def read_tensors(self, ctx=None, **kwargs):
        raise tb_errors.PermissionDeniedError("no access to this experiment")


def test_data_provider_errors_become_json_4xx(logs):
    forgetful = make_client(logs[0], {"cnnvis": 0, "images": 0}, provider_class=_ForgetfulProvider)
    response = forgetful.get(url("image", run=DEMO, tag="filters/conv1", step=1, index=0))
    assert response.status_code == 404
    assert "no longer available" in json.loads(response.get_data(as_text=True))["error"]
    response = forgetful.get(url("data", run=DEMO, tag="json/health/conv1", step=1))
    assert response.status_code == 403
    assert "no access" in json.loads(response.get_data(as_text=True))["error"]
