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


def test_dead_is_judged_against_the_layers_own_scale():
    # Three linear units over 4 outputs: ranges 3, 3 and 0.
    y = np.array([[0, 1, 5], [1, -1, 5], [2, 0.5, 5], [3, 2, 5]], np.float32)
    for scale in (1.0, 1e-10, 1e10):  # the old absolute 1e-7 called all three dead at 1e-10
        a = activity.unit_activity(y * np.float32(scale), "linear")
        assert list(a.dead) == [False, False, True], scale
    # A layer whose whole signal is 1e-10 (a random frozen base): its relu units live.
    r = activity.unit_activity(np.abs(y[:, :2]) * np.float32(1e-10), "relu")
    assert not r.dead.any()
    np.testing.assert_allclose(r.live_fraction, [0.75, 1.0])


def test_exactly_zero_and_relatively_flat_units_are_dead():
    n = 6
    y = np.zeros((n, 6), np.float32)
    y[:, 0] = np.linspace(0, 1, n)  # range 1
    y[:, 1] = np.linspace(0, 2, n)  # range 2
    y[:, 2] = np.linspace(0, 1, n)  # range 1
    y[:, 3] = np.linspace(0, 1e-12, n)  # range 1e-12: a millionth of the typical 1 is 1e-6
    y[:, 4] = np.linspace(0, 1e-5, n)  # range 1e-5 > 1e-6: alive, if weak
    # unit 5 stays exactly zero.
    # Typical range = median of the non-zero ranges [1, 2, 1, 1e-12, 1e-5] = 1.
    for name in ("linear", "relu"):
        a = activity.unit_activity(y, name)
        assert list(a.dead) == [False, False, False, True, False, True], name
    # In a layer of tiny units the exactly-zero one is still dead, the others are not.
    tiny = activity.unit_activity(y[:, [3, 5]], "relu")
    assert list(tiny.dead) == [False, True]
    # Rounding around a large offset is flat: 1000 and the next float32 (1000.00006) differ
    # by 6.1e-5 <= 1e-6 * 1000, although the other unit varies by only 1e-4 as well.
    off = np.array([[1000.0, 0.0], [1000.0001, 1e-4]], np.float32)
    assert list(activity.unit_activity(off, "linear").dead) == [True, False]


def test_flat_units_by_hand():
    hi = np.array([1.0, 1e-12, 0.0, 3.0, 5e-7, np.nan])
    lo = np.array([0.0, 0.0, 0.0, 3.0 - 2e-6, 0.0, np.nan])
    # Ranges [1, 1e-12, 0, 2e-6, 5e-7, none]; the typical one is the median of the non-zero
    # ones, (5e-7 + 2e-6) / 2 = 1.25e-6. Flat: range <= 1e-6 * max(1.25e-6, own level):
    # unit 1: 1e-12 <= 1.25e-12; unit 2: exactly zero; unit 3: 2e-6 <= 3e-6 (offset 3);
    # unit 4: 5e-7 > 1.25e-12 lives; unit 5 has no finite output.
    assert list(activity.flat_units(hi, lo)) == [False, True, True, True, False, True]
