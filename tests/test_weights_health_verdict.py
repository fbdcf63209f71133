"""weights.health.verdict: each rule and their combination on hand-made evidence."""

import pytest

from keras_cnnvis.weights.health import verdict


@pytest.mark.parametrize(
    "evidence, expected, converged",
    [
        ({"n_filters": 16}, "converging", True),
        ({"n_filters": 16, "median_update_ratio": 1e-4}, "converged (stopped moving)", True),
        # Frozen on purpose (trainable=False here or on a model around it): a verdict of its
        # own, not a failure; the training rules (not learning, stopped, unstable) are off.
        ({"n_filters": 16, "trainable": False}, "frozen", True),
        (
            {"n_filters": 16, "trainable": False, "max_drift": 0.0, "median_update_ratio": 0},
            "frozen",
            True,
        ),
        (
            {"n_filters": 16, "trainable": False, "median_growth": 27.0, "he_scale_ratio": 8},
            "frozen",
            True,
        ),
        (
            {
                "trainable": False,
                "n_filters": 16,
                "noise_like_fraction": 0.8,
                "kernel_size": [5, 5],
            },
            "frozen; noise-like filters",
            True,
        ),
        (
            {"trainable": False, "n_filters": 8, "n_units": 8, "dead_units": 8},
            "frozen; dead units: 8/8",
            True,
        ),
        # Non-finite weights break the forward pass, frozen or not.
        (
            {"trainable": False, "n_filters": 8, "non_finite_filters": 2},
            "frozen; non-finite weights: 2/8 filters",
            False,
        ),
        ({"n_filters": 16, "trainable": True, "max_drift": 0.0}, "not learning", False),
        # Outputs 5e-11 of the input's RMS: below 1e-6, a finding, not a failure.
        (
            {"n_filters": 8, "signal_gain": 5.16e-11},
            "vanishing signal: outputs 5.2e-11 of the input",
            True,
        ),
        (
            {"n_filters": 8, "trainable": False, "signal_gain": 5.16e-11},
            "frozen; vanishing signal: outputs 5.2e-11 of the input",
            True,
        ),
        ({"n_filters": 8, "signal_gain": 2e-6}, "converging", True),
        ({"n_filters": 16, "max_drift": 0.0, "median_update_ratio": 0.0}, "not learning", False),
        (
            {"n_filters": 16, "noise_like_fraction": 0.8, "kernel_size": [5, 5]},
            "noise-like: not converged",
            False,
        ),
        (
            {"n_filters": 16, "noise_like_fraction": 0.8, "kernel_size": [3, 3]},
            "no smooth structure (3x3: weak evidence)",
            True,
        ),
        ({"n_filters": 16, "noise_like_fraction": 0.7, "kernel_size": [5, 5]}, "converging", True),
        ({"n_filters": 16, "n_units": 16, "dead_units": 3}, "dead units: 3/16", True),
        ({"n_filters": 16, "n_units": 16, "dead_units": 16}, "dead units: 16/16", False),
        ({"n_filters": 8, "non_finite_filters": 2}, "non-finite weights: 2/8 filters", False),
        ({"n_filters": 8, "median_growth": 27.0}, "unstable: weights grew 27x", False),
        (
            {"n_filters": 8, "median_growth": 27.0, "he_scale_ratio": 8.0},
            "unstable: weights grew 27x",
            False,
        ),
        # Grown 27x from a deliberately tiny initialisation but still small: fine.
        ({"n_filters": 8, "median_growth": 27.0, "he_scale_ratio": 0.4}, "converging", True),
        (
            {"n_filters": 8, "median_update_ratio": 0.8},
            "unstable: filters change 80% per update",
            False,
        ),
        (
            {"n_filters": 8, "n_units": 8, "dead_units": 1, "median_update_ratio": 1e-5},
            "dead units: 1/8; stopped moving",
            True,
        ),
    ],
)
def test_verdict_rules(evidence, expected, converged):
    text, problems, ok = verdict.decide(evidence)
    assert text == expected and ok == converged
    findings = [] if expected.startswith("conver") else expected.split("; ")
    assert problems == [p for p in findings if p != "frozen"]
