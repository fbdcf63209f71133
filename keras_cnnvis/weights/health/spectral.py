"""Layer-level spectral signals of a weight matrix: the power-law tail exponent of the
eigenvalues of W^T W (as WeightWatcher uses) and the largest eigenvalue against random noise.

Power-law exponent. `W` is the layer's `(fan_in, n_filters)` matrix (a conv kernel reshaped to
`(kh * kw * c_in, c_out)`). The empirical spectral density of `X = W^T W` is fitted with a
continuous power law `p(x) ~ x^-alpha` for `x >= x_min`, the method of Clauset, Shalizi and
Newman (2009): for each candidate `x_min` (each eigenvalue leaving at least `min_tail` in the
tail) the maximum-likelihood exponent is `alpha = 1 + n / sum(log(x_i / x_min))`, and the
`x_min` whose fitted law is closest to the empirical tail (smallest Kolmogorov-Smirnov distance)
wins; the standard error is `(alpha - 1) / sqrt(n)`. WeightWatcher (Martin & Mahoney) reads
`alpha` in about 2..6 as a well-trained layer and larger values as under-trained (random-like)
and below 2 as over-fitted. The fit needs many eigenvalues: a layer with 16 filters has 16, so
its `alpha` is only a rough indication (its standard error is reported).

Spectral spike. A random matrix with i.i.d. entries of variance `s^2` has its eigenvalues
inside the Marchenko-Pastur bulk, up to `s^2 (sqrt(M) + sqrt(N))^2`. Learned structure shows as
eigenvalues above the bulk ("spikes"). `spike_ratio = lambda_max / edge` (with `s^2` estimated
from `W` itself) is about 1 for noise; its p-value comes from a Monte-Carlo null (i.i.d.
Gaussian matrices of the same shape, fixed seed, cached per shape). This works for small layers
where `alpha` cannot be fitted reliably.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from keras_cnnvis._threads import one_blas_thread

MIN_EIGENVALUES = 10
"""Fewer non-zero eigenvalues than this: no power-law fit (alpha is NaN)."""

MIN_TAIL = 5
"""The smallest tail a power-law fit may use."""

NULL_SAMPLES = 199
"""Monte-Carlo draws of the spike null distribution (p-values resolve down to 0.005)."""


@dataclass
class PowerLawFit:
    """A Clauset-style power-law fit of the tail of a spectrum.

    Attributes:
        alpha: the exponent (NaN when there are too few eigenvalues).
        x_min: where the tail starts.
        n_tail: eigenvalues in the tail.
        ks: Kolmogorov-Smirnov distance of the fit on the tail.
        sigma: standard error of `alpha`.
        n_eigenvalues: non-zero eigenvalues available.
    """

    alpha: float
    x_min: float
    n_tail: int
    ks: float
    sigma: float
    n_eigenvalues: int


def eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Eigenvalues of `W^T W` (the squared singular values of `W`), descending, float64."""
    w = np.asarray(matrix, np.float64)
    if w.ndim != 2:
        raise ValueError(f"A weight matrix must be 2-D; got shape {w.shape}.")
    with one_blas_thread():
        s = np.linalg.svd(w, compute_uv=False)
    return np.sort(s**2)[::-1]


def powerlaw_mle(x: np.ndarray, x_min: float) -> float:
    """The continuous power-law MLE `1 + n / sum(log(x / x_min))` over `x >= x_min`."""
    tail = np.asarray(x, np.float64)
    tail = tail[tail >= x_min]
    s = float(np.sum(np.log(tail / x_min)))
    return 1.0 + len(tail) / s if s > 0 else float("inf")


def fit_powerlaw(eigs: np.ndarray, min_tail: int = MIN_TAIL) -> PowerLawFit:
    """Fits a power law to the upper tail of a spectrum (Clauset, Shalizi & Newman 2009).

    Example:

    ```python
    fit = fit_powerlaw(eigenvalues(w))
    fit.alpha, fit.sigma
    ```

    Args:
        eigs: eigenvalues (any order; zeros and non-finite values are dropped).
        min_tail: the smallest tail to fit. Defaults to 5.

    Returns:
        A `PowerLawFit` (alpha NaN if fewer than `MIN_EIGENVALUES` positive eigenvalues).
    """
    x = np.asarray(eigs, np.float64)
    x = x[np.isfinite(x)]
    x = np.sort(x[x > 0])[::-1]
    if len(x):
        x = x[x > x[0] * 1e-12]
    n_all = len(x)
    if n_all < max(MIN_EIGENVALUES, min_tail):
        return PowerLawFit(float("nan"), float("nan"), 0, float("nan"), float("nan"), n_all)
    best = None
    for k in range(min_tail, n_all + 1):
        tail = x[:k][::-1]  # ascending
        x_min = tail[0]
        s = float(np.sum(np.log(tail / x_min)))
        if s <= 0:
            continue
        alpha = 1.0 + k / s
        cdf = 1.0 - (tail / x_min) ** (1.0 - alpha)
        upper = np.arange(1, k + 1) / k
        lower = np.arange(0, k) / k
        ks = float(max(np.max(np.abs(upper - cdf)), np.max(np.abs(cdf - lower))))
        if best is None or ks < best[0] - 1e-12:
            best = (ks, alpha, k, x_min)
    if best is None:
        return PowerLawFit(float("nan"), float("nan"), 0, float("nan"), float("nan"), n_all)
    ks, alpha, k, x_min = best
    return PowerLawFit(
        float(alpha), float(x_min), int(k), ks, float((alpha - 1) / np.sqrt(k)), n_all
    )


def mp_edge(matrix: np.ndarray) -> float:
    """The Marchenko-Pastur upper edge `s^2 (sqrt(M) + sqrt(N))^2` for `W`'s own variance."""
    w = np.asarray(matrix, np.float64)
    m, n = w.shape
    var = float(np.mean(w**2))
    return var * (np.sqrt(m) + np.sqrt(n)) ** 2


def spike_ratio(matrix: np.ndarray) -> float:
    """`lambda_max(W^T W) / mp_edge(W)`: about 1 for i.i.d. noise, larger with structure."""
    edge = mp_edge(matrix)
    if not np.isfinite(edge) or edge <= 0:
        return float("nan")
    return float(eigenvalues(matrix)[0] / edge)


@functools.lru_cache(maxsize=32)
def spike_null(m: int, n: int, samples: int = NULL_SAMPLES, seed: int = 0) -> np.ndarray:
    """Sorted `spike_ratio`s of i.i.d. Gaussian `(m, n)` matrices (fixed seed, cached).

    `W^T W` of such a matrix is Wishart-distributed, so it is drawn directly with the
    Bartlett decomposition (`p = min(m, n)` squared: cheap even for a Dense layer on a
    large image): `A` lower triangular with `A_ii = sqrt(chi2(dof - i))`, `A_ij ~ N(0, 1)`
    below the diagonal, and `A A^T ~ Wishart_p(dof, I)` with `dof = max(m, n)`.
    """
    rng = np.random.default_rng(seed)
    p, dof = min(m, n), max(m, n)
    edge_unit = (np.sqrt(m) + np.sqrt(n)) ** 2 / (m * n)
    out = np.empty(samples)
    with one_blas_thread():
        for i in range(samples):
            a = np.tril(rng.standard_normal((p, p)), -1)
            a[np.diag_indices(p)] = np.sqrt(rng.chisquare(dof - np.arange(p)))
            gram = a @ a.T
            out[i] = np.linalg.eigvalsh(gram)[-1] / (np.trace(gram) * edge_unit)
    return np.sort(out)


def spike_p_value(matrix: np.ndarray, samples: int = NULL_SAMPLES) -> tuple[float, float]:
    """`(spike_ratio, p)`: `p = (1 + #null >= ratio) / (1 + samples)` under i.i.d. noise.

    Raises:
        ValueError: if the matrix is not 2-D.
    """
    w = np.asarray(matrix, np.float64)
    if w.ndim != 2:
        raise ValueError(f"A weight matrix must be 2-D; got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        return float("nan"), float("nan")
    ratio = spike_ratio(w)
    if not np.isfinite(ratio):
        return ratio, float("nan")
    null = spike_null(int(w.shape[0]), int(w.shape[1]), int(samples))
    count = len(null) - int(np.searchsorted(null, ratio, side="left"))
    return ratio, (1.0 + count) / (1.0 + len(null))


@dataclass
class SpectralScores:
    """Layer-level spectral evidence (see the module docstring)."""

    alpha: float
    alpha_sigma: float
    alpha_tail: int
    n_eigenvalues: int
    spike_ratio: float
    spike_p: float


def spectral_scores(matrix: np.ndarray) -> SpectralScores:
    """The power-law exponent and the spike test of a `(fan_in, n_filters)` weight matrix.

    Example:

    ```python
    s = spectral_scores(layer_kernel(model, "conv3").matrix)
    s.alpha, s.spike_ratio
    ```

    Args:
        matrix: the layer's weight matrix.

    Returns:
        A `SpectralScores` (NaN fields when the matrix holds NaN/inf values).
    """
    w = np.asarray(matrix, np.float64)
    if not np.all(np.isfinite(w)):
        nan = float("nan")
        return SpectralScores(nan, nan, 0, 0, nan, nan)
    fit = fit_powerlaw(eigenvalues(w))
    ratio, p = spike_p_value(w)
    return SpectralScores(fit.alpha, fit.sigma, fit.n_tail, fit.n_eigenvalues, ratio, p)
