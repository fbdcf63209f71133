"""weights.health.structure: exact structure-test values (constant kernel, pure edge, i.i.d.
noise against a brute-force DCT and a numerically integrated Beta tail) and its calibration
under noise."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from keras_cnnvis.weights.health import structure


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
