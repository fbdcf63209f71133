"""weights.health.spectral: the power-law MLE formula, the exponent recovered from synthetic
heavy-tailed spectra, Marchenko-Pastur matrices looking random, and the spike null."""

import math

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from keras_cnnvis.weights.health import spectral


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
