"""weights.health.layer: `layer_health` on a hand-set 5x5 kernel with hand-made probe outputs,
initial and previous weights: every evidence number computed by hand, the table's columns in
order, the flags, the notes for what was not scored, and the verdict they lead to."""

import keras
import numpy as np
import pytest

from keras_cnnvis.weights.health import layer_health, structure
from keras_cnnvis.weights.kernels import layer_kernel


@pytest.fixture(scope="module")
def model():
    i = keras.Input((9, 9, 3))
    return keras.Model(i, keras.layers.Conv2D(4, 5, activation="relu", name="c")(i))


def smooth_kernel():
    """Four smooth (structured) 5x5x3 filters: ramps of different slopes on a constant."""
    x = np.arange(5, dtype=np.float32) - 2
    k = np.zeros((5, 5, 3, 4), np.float32)
    for f in range(4):
        for ch in range(3):
            k[:, :, ch, f] = 1.0 + (f + 1) * 0.3 * x[None, :] + 0.1 * ch
    return k


def test_every_score_by_hand(model):
    w = smooth_kernel()
    initial = w.copy()
    initial[..., 1] /= 2  # filter 1 doubled since initialisation: drift 1, growth 2
    previous = w.copy()
    previous[..., 3] /= 0.9  # filter 3 shrank by 10 % in the last update
    outputs = np.zeros((2, 3, 3, 4), np.float32)  # unit 0 never fires: dead
    outputs[..., 1] = np.arange(18).reshape(2, 3, 3) % 2  # positive at the 9 odd of 18 outputs
    outputs[..., 2:] = 1.0 + np.arange(18).reshape(2, 3, 3, 1)
    h = layer_health(
        layer_kernel(model, "c", raw=w),
        outputs=outputs,
        activation="relu",
        initial=layer_kernel(model, "c", raw=initial),
        previous=layer_kernel(model, "c", raw=previous),
    )
    m = w.reshape(75, 4)
    e = h.evidence
    assert (h.layer, h.layer_type, h.kind, h.kernel_size, h.n_filters) == (
        "c",
        "Conv2D",
        "conv",
        (5, 5),
        4,
    )
    assert e["weight_rms"] == pytest.approx(np.sqrt(np.mean(m.astype(np.float64) ** 2)))
    assert e["he_scale_ratio"] == pytest.approx(e["weight_rms"] / np.sqrt(2 / 75))
    np.testing.assert_allclose(h.table["norm"], np.linalg.norm(m, axis=0), rtol=1e-6)
    # Structure: exactly the module's scores; smooth filters are not noise-like.
    s = structure.structure_scores(w.transpose(3, 0, 1, 2), structure.ALPHA)
    np.testing.assert_allclose(h.table["noise_p"], s.p_value)
    assert e["tested_filters"] == 4 and e["noise_like_filters"] == 0
    # Activity: one dead unit of four; unit 1 live at 9 of 18 outputs.
    assert (e["n_units"], e["dead_units"], e["saturated_units"]) == (4, 1, 0)
    np.testing.assert_allclose(h.table["live_fraction"], [0.0, 9 / 18, 1.0, 1.0])
    # Movement: ||W - W/2|| / ||W/2|| = 1; ||W - W/0.9|| / ||W|| = 1/0.9 - 1.
    np.testing.assert_allclose(h.table["drift"], [0, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(h.table["growth"], [1, 2, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(h.table["update_ratio"], [0, 0, 0, 1 / 0.9 - 1], rtol=1e-5)
    assert e["mean_drift"] == pytest.approx(0.25) and e["max_drift"] == pytest.approx(1.0)
    assert e["median_growth"] == pytest.approx(1.0) and e["median_update_ratio"] == 0.0
    assert h.columns == [
        "norm",
        "structure",
        "noise_p",
        "noise_like",
        "live_fraction",
        "dead",
        "saturated",
        "drift",
        "growth",
        "update_ratio",
    ]
    assert h.flags == {"dead": [0], "not_moving": [0, 2, 3], "stopped": [0, 1, 2]}
    # Every filter is a constant plus a ramp: the matrix has rank 2, so 2 eigenvalues.
    assert h.notes == ["only 2 eigenvalues: no power-law fit"]
    assert h.verdict == "dead units: 1/4; stopped moving" and h.converged
    scalars = h.scalars()  # measured scores, NaN included (no power-law fit: alpha NaN)
    assert np.isnan(scalars.pop("spectral_alpha"))
    assert scalars == {
        "noise_like_fraction": 0.0,
        "dead_fraction": 0.25,
        "saturated_fraction": 0.0,
        "mean_drift": pytest.approx(0.25),
        "median_update_ratio": 0.0,
        "spike_ratio": pytest.approx(e["spike_ratio"]),
    }


def test_kernel_alone_notes_what_was_not_scored_and_non_finite_filters(model):
    w = smooth_kernel()
    w[0, 0, 0, 2] = np.nan
    h = layer_health(layer_kernel(model, "c", raw=w), trainable=False)
    assert h.columns[:2] == ["norm", "non_finite"] and h.flags["non_finite"] == [2]
    assert h.evidence["non_finite_filters"] == 1 and h.evidence["trainable"] is False
    assert h.notes == [
        "some weights are NaN or inf: scores of those filters are undefined",
        "1 filters not tested for structure (all-zero or non-finite)",
        "no probe data: dead and saturated units not scored",
        "no initial weights: drift from initialisation not measured",
        "no previous weights: update ratio not measured",
    ]
    # trainable=False: frozen, not "not learning"; the NaN weight still fails the layer.
    assert h.problems == ["non-finite weights: 1/4 filters"] and not h.converged and h.frozen
    assert h.verdict == "frozen; non-finite weights: 1/4 filters"


def test_frozen_layer_keeps_its_scores_without_per_filter_movement_flags(model):
    w = smooth_kernel()
    outputs = np.zeros((2, 3, 3, 4), np.float32)  # unit 0 dead, the rest 1e-9 * (1..18)
    outputs[..., 1:] = 1e-9 * (1.0 + np.arange(18, dtype=np.float32).reshape(2, 3, 3, 1))
    k = layer_kernel(model, "c", raw=w)
    h = layer_health(
        k,
        trainable=False,
        outputs=outputs,
        activation="relu",
        initial=k,
        previous=k,
        input_rms=0.5,
    )
    e = h.evidence
    # Drift and update are measured (all zero) but every filter standing still is the point
    # of freezing: no not_moving/stopped flags; the dead unit stays flagged.
    np.testing.assert_array_equal(h.table["drift"], np.zeros(4))
    assert e["max_drift"] == 0.0 and e["median_update_ratio"] == 0.0
    assert h.flags == {"dead": [0]}
    # RMS of the outputs: 3 of 4 units carry 1e-9 * (1..18), so RMS^2 = 3/4 * mean(k^2) 1e-18.
    rms = np.sqrt(0.75 * np.mean(np.arange(1, 19) ** 2.0)) * 1e-9
    assert e["output_rms"] == pytest.approx(rms, rel=1e-6)
    assert e["signal_gain"] == pytest.approx(rms / 0.5, rel=1e-6)  # 1.9e-8 < 1e-6
    assert h.problems == ["dead units: 1/4", "vanishing signal: outputs 1.9e-08 of the input"]
    assert h.verdict == "frozen; " + "; ".join(h.problems) and h.converged and h.frozen
    assert h.payload()["frozen"] is True and h.payload()["converged"] is True
    # The same layer trainable and not moving: "not learning", flagged per filter.
    t = layer_health(k, outputs=outputs, activation="relu", initial=k, previous=k)
    assert t.verdict.startswith("not learning; dead units: 1/4") and not t.converged
    assert t.flags["not_moving"] == [0, 1, 2, 3] and not t.frozen


def test_one_by_one_kernels_skip_the_structure_test():
    i = keras.Input((4, 4, 8))
    model = keras.Model(i, keras.layers.Conv2D(16, 1, name="p")(i))
    h = layer_health(layer_kernel(model, "p"))
    assert h.evidence["noise_like_fraction"] is None and "noise_p" not in h.columns
    assert "no spatial structure test: 1x1 kernels" in h.notes
