"""weights.health.activity: dead, live and saturated units on hand-made outputs."""

import numpy as np

from keras_cnnvis.weights.health import activity


def test_relu_units_dead_and_live_fraction():
    y = np.zeros((2, 2, 2, 3), np.float32)  # 8 outputs per unit
    y[..., 1] = [[[1, -1], [2, -2]], [[0, 3], [-1, 4]]]  # 4 of 8 positive
    y[..., 2] = 5.0  # always positive but constant
    a = activity.unit_activity(y, "relu")
    np.testing.assert_allclose(a.live_fraction, [0.0, 0.5, 1.0])
    assert list(a.dead) == [True, False, True]  # never positive; constant
    assert not a.saturated.any() and a.n_outputs == 8


def test_tanh_sigmoid_and_relu6_saturation():
    t = np.array([[0.99, 0.1], [-0.98, 0.2], [0.999, 0.3], [-0.99, -0.5]], np.float32)
    a = activity.unit_activity(t, "tanh")
    np.testing.assert_allclose(a.saturated_fraction, [1.0, 0.0])
    assert list(a.saturated) == [True, False] and not a.dead.any()
    s = activity.unit_activity(np.array([[0.005, 0.5], [0.995, 0.6]], np.float32), "sigmoid")
    np.testing.assert_allclose(s.live_fraction, [0.0, 1.0])
    r6 = activity.unit_activity(np.array([[6.0], [3.0], [0.0], [6.0]], np.float32), "relu6")
    np.testing.assert_allclose(r6.live_fraction, [0.25])
    np.testing.assert_allclose(r6.saturated_fraction, [0.5])
    lin = activity.unit_activity(np.array([[-1.0, 2.0], [-3.0, 2.0]], np.float32), "linear")
    assert list(lin.dead) == [False, True]  # negative is fine for linear; constant is dead
