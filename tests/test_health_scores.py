"""Filter-health scores on hand-made inputs: exact structure-test values (constant kernel, pure
edge, i.i.d. noise), its calibration under noise, power-law and spike fits on synthetic
spectra, unit activity, drift and the verdict rules."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from threadpoolctl import threadpool_limits

from keras_cnnvis.health import activity, drift, spectral, structure, verdict


def beta_upper_tail(x, a, b):
    """P(Beta(a, b) >= x) by numerical integration of the density (independent reference)."""
    norm = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    value, _ = integrate.quad(lambda t: t ** (a - 1) * (1 - t) ** (b - 1) / norm, x, 1.0)
    return value


def brute_dct_fraction(kernel):
    """Low-band energy share with the DCT written out as explicit sums."""
    kh, kw, c = kernel.shape

    def a(u, n):
        return math.sqrt((1 if u == 0 else 2) / n)

    low = total = 0.0
    for u in range(kh):
        for v in range(kw):
            e = 0.0
            for ch in range(c):
                coef = sum(
                    a(u, kh)
                    * a(v, kw)
                    * kernel[y, x, ch]
                    * math.cos(math.pi * (2 * y + 1) * u / (2 * kh))
                    * math.cos(math.pi * (2 * x + 1) * v / (2 * kw))
                    for y in range(kh)
                    for x in range(kw)
                )
                e += coef**2
            total += e
            if u / kh + v / kw < 0.5:
                low += e
    return low / total


def test_low_band_sizes():
    assert structure.low_band(5, 5).sum() == 6  # u + v <= 2
    assert structure.low_band(3, 3).sum() == 3  # u + v <= 1
    assert structure.low_band(7, 7).sum() == 10  # u + v <= 3
    assert structure.low_band(1, 7).sum() == 4  # v <= 3
    np.testing.assert_allclose(
        structure.dct_matrix(5) @ structure.dct_matrix(5).T, np.eye(5), atol=1e-12
    )


def test_constant_kernel_is_fully_structured():
    s = structure.structure_scores(np.full((1, 5, 5, 3), 0.7))
    assert s.lowfreq_fraction[0] == pytest.approx(1.0, abs=1e-6)
    assert s.structure[0] == pytest.approx(1.0, abs=1e-6)
    assert s.p_value[0] == pytest.approx(0.0, abs=1e-12)
    assert s.null_mean == pytest.approx(6 / 25)
    assert not s.noise_like[0] and s.testable[0]


def test_pure_edge_kernel_exact_values():
    # Columns +1, +1, 0, -1, -1: all energy in DCT row v = 0, columns u = 1 (and 3);
    # the share at u = 1 is (8/5)(cos(pi/10) + cos(3pi/10))^2 / 4.
    edge = np.tile(np.array([1.0, 1.0, 0.0, -1.0, -1.0]), (5, 1))[None, :, :, None]
    expected = 0.4 * (math.cos(math.pi / 10) + math.cos(3 * math.pi / 10)) ** 2
    s = structure.structure_scores(edge)
    assert s.lowfreq_fraction[0] == pytest.approx(expected, rel=1e-6)  # 0.947214
    assert s.structure[0] == pytest.approx((expected - 0.24) / 0.76, rel=1e-6)
    # d = 25, d_B = 6: Beta(3, 9.5).
    assert s.p_value[0] == pytest.approx(beta_upper_tail(expected, 3.0, 9.5), rel=1e-4)
    assert s.p_value[0] < 1e-5 and not s.noise_like[0]


def test_iid_noise_kernel_values_match_a_brute_force_reference():
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((5, 5, 3))
    s = structure.structure_scores(kernel[None])
    frac = brute_dct_fraction(kernel)
    assert s.lowfreq_fraction[0] == pytest.approx(frac, rel=1e-6)
    # d = 75, d_B = 18: Beta(9, 28.5).
    assert s.p_value[0] == pytest.approx(beta_upper_tail(frac, 9.0, 28.5), rel=1e-4)
    assert s.noise_like[0] == (s.p_value[0] >= 0.01)


@pytest.mark.parametrize(
    "shape, draw",
    [
        ((5, 5, 3), "normal"),
        ((3, 3, 16), "normal"),
        ((5, 5, 3), "uniform"),  # Keras's glorot_uniform initialiser
        ((7, 7, 1), "uniform"),
    ],
)
def test_noise_is_flagged_at_rate_one_minus_alpha(shape, draw):
    rng = np.random.default_rng(11)
    n = 4000
    size = (n, *shape)
    k = rng.standard_normal(size) if draw == "normal" else rng.uniform(-1, 1, size)
    s = structure.structure_scores(k, alpha=0.01)
    structured = int((~s.noise_like).sum())
    # Binomial(4000, 0.01): mean 40, 99.9 % of draws fall in [22, 62].
    assert 22 <= structured <= 62, structured
    if draw == "normal":  # the Beta null is exact: p-values are uniform
        assert stats.kstest(s.p_value, "uniform").pvalue > 0.001


def test_smooth_blob_with_noise_is_detected_and_untestable_filters_are_marked():
    y, x = np.mgrid[-2:3, -2:3]
    blob = np.exp(-(x**2 + y**2) / 2.0)[..., None] * np.array([1.0, -0.5, 0.2])
    noisy = blob + 0.1 * np.random.default_rng(3).standard_normal(blob.shape)
    zero = np.zeros((5, 5, 3))
    bad = blob.copy()
    bad[0, 0, 0] = np.nan
    s = structure.structure_scores(np.stack([noisy, zero, bad]))
    assert not s.noise_like[0] and s.p_value[0] < 1e-4
    assert list(s.testable) == [True, False, False]
    assert np.isnan(s.p_value[1]) and np.isnan(s.p_value[2]) and not s.noise_like[1:].any()
    one = structure.structure_scores(np.ones((4, 1, 1, 8)))
    assert not one.testable.any() and np.isnan(one.p_value).all()
    with pytest.raises(ValueError, match="alpha must be in"):
        structure.structure_scores(zero[None], alpha=1.5)


def test_powerlaw_mle_formula_and_minimum_size():
    x = np.exp([0.0, 1.0, 2.0])  # sum(log(x / x_min)) = 3
    assert spectral.powerlaw_mle(x, 1.0) == pytest.approx(1.0 + 3 / 3)
    fit = spectral.fit_powerlaw(np.arange(1.0, 10.0))  # 9 < MIN_EIGENVALUES
    assert math.isnan(fit.alpha) and fit.n_eigenvalues == 9


def pareto_matrix(alpha, m, n, rng):
    """W = U diag(sqrt(lambda)) V^T with eigenvalues of W^T W drawn from p(x) ~ x^-alpha."""
    lam = (1 - rng.random(n)) ** (-1 / (alpha - 1))
    with threadpool_limits(1, "blas"):  # small QRs: threads only add overhead
        u, _ = np.linalg.qr(rng.standard_normal((m, n)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return u @ np.diag(np.sqrt(lam)) @ v.T


def test_heavy_tail_exponent_is_recovered_and_gaussian_matrices_look_random():
    rng = np.random.default_rng(0)
    heavy = spectral.spectral_scores(pareto_matrix(2.5, 1000, 200, rng))
    assert abs(heavy.alpha - 2.5) < 3 * heavy.alpha_sigma + 0.05, heavy
    assert heavy.spike_ratio > 3 and heavy.spike_p == pytest.approx(1 / 200)
    mp = spectral.spectral_scores(rng.standard_normal((1000, 200)))
    # Marchenko-Pastur: the spectrum ends sharply at the bulk edge, so the tail is steep.
    assert mp.alpha > 4.5, mp
    assert 0.95 < mp.spike_ratio < 1.05 and mp.spike_p > 0.01
    # The eigenvalues are those of W^T W.
    w = rng.standard_normal((30, 12))
    np.testing.assert_allclose(spectral.eigenvalues(w), np.sort(np.linalg.eigvalsh(w.T @ w))[::-1])


def test_spike_null_from_the_wishart_shortcut_matches_direct_simulation():
    rng = np.random.default_rng(5)
    direct = [spectral.spike_ratio(rng.standard_normal((40, 12))) for _ in range(500)]
    null = spectral.spike_null(40, 12)
    assert len(null) == spectral.NULL_SAMPLES
    assert stats.ks_2samp(direct, null).pvalue > 0.01
    # Transposed shapes share the same non-zero spectrum.
    np.testing.assert_allclose(spectral.spike_null(12, 40), null)


def test_spectral_scores_of_non_finite_matrices_are_nan():
    w = np.ones((20, 10))
    w[3, 4] = np.inf
    s = spectral.spectral_scores(w)
    assert math.isnan(s.alpha) and math.isnan(s.spike_ratio) and math.isnan(s.spike_p)


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


@pytest.mark.parametrize(
    "evidence, expected, converged",
    [
        ({"n_filters": 16}, "converging", True),
        ({"n_filters": 16, "median_update_ratio": 1e-4}, "converged (stopped moving)", True),
        ({"n_filters": 16, "trainable": False}, "not learning", False),
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
    assert problems == ([] if expected.startswith("conver") else expected.split("; "))
