"""The cnnvis plugin serves the Network records as written: the kind, its tags, exact float
payloads and atlases; made-up tags and malformed values are refused."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from callback_helpers import small_cnn
from keras_cnnvis.callbacks.network import write_network
from keras_cnnvis.network import NetworkTracer, network_trace
from keras_cnnvis.network.records import decode
from keras_cnnvis.summary import LogWriter
from test_plugin_routes import PREFIX, make_client

RUN = "fit/cnnvis"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("network_routes")
    model = small_cnn()
    probes = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
    writer = LogWriter(os.path.join(str(logdir), RUN))
    overview = write_network(writer, NetworkTracer(model), probes, 4)
    writer.close()
    return make_client(logdir, {"cnnvis": 0, "images": 0}), model, probes, overview


def get(client, route, **params):
    response = client.get(f"{PREFIX}/{route}", query_string=params)
    return response.status_code, response.get_data()


def test_network_kind_tags_and_exact_payloads(served):
    client, model, probes, overview = served
    status, body = get(client, "runs")
    assert status == 200
    assert "network" in next(r for r in json.loads(body)["runs"] if r["run"] == RUN)["kinds"]
    status, body = get(client, "tags", run=RUN, kind="network")
    tags = json.loads(body)
    paths = [layer["path"] for layer in overview["layers"]]
    assert set(tags["json"]) == {"overview"} | {f"layer/{p}" for p in paths}
    assert set(tags["images"]) == {"atlas", "input"}
    status, body = get(client, "data", run=RUN, tag="json/network/layer/conv_b", step=4)
    assert status == 200
    served_output = decode(json.loads(body)["outputs"][1])
    np.testing.assert_array_equal(served_output, network_trace(model, probes[1])[2].output)
    status, body = get(client, "image", run=RUN, tag="network/atlas", step=4, index=1)
    atlas = np.asarray(Image.open(io.BytesIO(body)))
    assert status == 200 and atlas.shape == tuple(overview["atlas"]["size"])


@pytest.mark.parametrize(
    "route, params, code",
    [
        ("data", {"tag": "json/network/layer/nope", "step": "4"}, 404),
        ("data", {"tag": "json/network/layer/../../overview", "step": "4"}, 404),
        ("data", {"tag": "json/network/overview", "step": "3"}, 404),
        ("data", {"tag": "json/network/overview", "step": "4e0"}, 400),
        ("image", {"tag": "network/atlas", "step": "4", "index": "2"}, 404),
        ("image", {"tag": "json/network/overview", "step": "4", "index": "0"}, 404),
    ],
)
def test_made_up_tags_and_bad_values_are_refused(served, route, params, code):
    status, body = get(served[0], route, run=RUN, **params)
    assert status == code and "error" in json.loads(body)
