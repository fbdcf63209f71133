"""weights.health.drift: drift, update ratio and growth computed by hand."""

import numpy as np
import pytest

from keras_cnnvis.weights.health import drift


def test_drift_update_ratio_and_growth_exact():
    w0 = np.array([[3.0, 0.0], [4.0, 0.0]])
    wp = np.array([[3.0, 0.0], [1.0, 0.0]])
    wt = np.array([[3.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(drift.drift(wt, w0), [4 / 5, 0.0])
    np.testing.assert_allclose(drift.update_ratio(wt, wp), [1 / 3, 0.0])
    np.testing.assert_allclose(drift.growth(wt, w0), [3 / 5, 0.0])
    moved = np.array([[3.0, 1.0], [0.0, 0.0]])
    assert drift.drift(moved, w0)[1] == np.inf  # from zero to non-zero
    with pytest.raises(
        ValueError, match=r"shape \(2, 3\); expected the layer's weight matrix shape \(2, 2\)"
    ):
        drift.drift(wt, np.zeros((2, 3)))
