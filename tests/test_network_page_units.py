"""The Network page's own arithmetic (static/network_units.js, run in Node) gives the same unit
breakdowns as keras_cnnvis.network.unit_breakdown on full-mode records, for every layer type,
and its activations reproduce the values Keras computed."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from keras_cnnvis.network import NetworkTracer, unit_breakdown
from keras_cnnvis.network.records import layer_payload, network_snapshot, overview_payload
from test_network_units import _zoo

NODE = shutil.which("node")
STATIC = os.path.join(
    os.path.dirname(__file__), "..", "tensorboard_plugin", "tensorboard_plugin_cnnvis", "static"
)
SCRIPT = """
import { readFileSync } from "node:fs";
import { breakdown, decodeAll } from "%(units)s";
import { activated, elementwiseFn } from "%(activations)s";
const data = JSON.parse(readFileSync(process.argv[2], "utf8"));
const layers = Object.fromEntries(data.layers.map((l) => [l.path, l]));
const records = Object.fromEntries(Object.entries(data.records).map(([p, r]) => [p, decodeAll(r)]));
const out = data.cases.map(([path, channel, pos]) => {
  const info = layers[path];
  const rec = records[path];
  const inputs = info.inputs.map((p) => records[p].outputs[0]);
  if (rec.input_values) inputs[0] = rec.input_values[0];
  const d = breakdown(info, rec.weights, inputs, rec.outputs[0], channel, pos, data.top);
  const fn = elementwiseFn(info.type, info.config);
  const terms = d.terms && !Array.isArray(d.terms) ? d.terms : null;
  return {
    op: d.op, value: d.value, pre: d.pre_activation ?? null, result: d.result ?? null,
    activated: activated(d), elementwise: fn && d.x !== undefined ? fn(d.x) : null,
    channels: terms ? terms.channels : null, sums: terms ? terms.sums : null,
    rest: d.rest ?? null, merged: Array.isArray(d.terms) ? d.terms.map((t) => t.value) : null,
  };
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_page_breakdowns_equal_the_python_ones_for_every_layer_type(tmp_path):
    model = _zoo()
    tracer = NetworkTracer(model)
    image = np.random.default_rng(7).normal(size=(1, 9, 10, 4)).astype(np.float32)
    snap = network_snapshot(tracer, image, mode="full", top=3)
    n = len(snap.records)
    overview = overview_payload(tracer, snap, [None] * n, [None] * n)
    trace = snap.traces[0]
    rng = np.random.default_rng(0)
    cases = []
    for r in trace[1:]:
        if r.type in ("GetItem", "Reshape") or r.output.ndim not in (1, 3):
            continue
        for _ in range(6):
            index = tuple(int(rng.integers(0, s)) for s in r.output.shape)
            cases.append([r.path, index[-1], list(index[:-1])])
    records = {r.path: layer_payload(snap, k) for k, r in enumerate(snap.records)}
    data = {"layers": overview["layers"], "records": records, "cases": cases, "top": 3}
    (tmp_path / "data.json").write_text(json.dumps(data))
    script = SCRIPT % {
        "units": "file://" + os.path.abspath(os.path.join(STATIC, "network_units.js")),
        "activations": "file://" + os.path.abspath(os.path.join(STATIC, "network_activations.js")),
    }
    (tmp_path / "run.mjs").write_text(script)
    done = subprocess.run(
        [NODE, str(tmp_path / "run.mjs"), str(tmp_path / "data.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ops = set()
    for (path, channel, pos), js in zip(cases, json.loads(done.stdout)):
        py = unit_breakdown(trace, path, channel, pos, top=3)
        record = next(r for r in trace if r.path == path)
        assert js["op"] == py["op"] and js["value"] == pytest.approx(py["value"], abs=1e-7)
        ops.add(js["op"])
        if "pre_activation" in py:
            assert js["pre"] == pytest.approx(py["pre_activation"], rel=1e-9, abs=1e-9)
            assert js["channels"] == [int(c) for c in py["terms"]["channels"]]
            np.testing.assert_allclose(js["sums"], py["terms"]["sums"], rtol=1e-9, atol=1e-12)
            if py["rest"] is not None:
                assert js["rest"]["count"] == py["rest"]["count"]
                assert js["rest"]["sum"] == pytest.approx(py["rest"]["sum"], abs=1e-9)
            assert js["activated"] == pytest.approx(py["value"], abs=2e-5), (path, record.type)
        elif "result" in py:
            assert js["result"] == pytest.approx(py["result"], abs=1e-6), path
            assert js["result"] == pytest.approx(py["value"], abs=2e-5), path
            if py["op"] in ("sum", "product"):
                assert js["merged"] == pytest.approx([t["value"] for t in py["terms"]], abs=1e-7)
        elif record.type in ("Activation", "ReLU"):
            assert js["elementwise"] == pytest.approx(py["value"], abs=2e-5), path
    assert ops == {
        "convolution", "dense", "max pooling", "mean pooling", "global max pooling",
        "global mean pooling", "batch normalization", "sum", "product", "concatenate",
        "elementwise",
    }  # fmt: skip
