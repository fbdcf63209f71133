"""The noise corruptions of Hendrycks & Dietterich (2019): Gaussian, shot (Poisson) and
impulse (salt-and-pepper) noise, and speckle noise (held out), on batches in [0, 1].

Every function takes `(x, severity, rng, geo)`: float32 `(N, H, W, C)` in [0, 1], the
severity 1-5, a numpy Generator and the `Geometry` choosing the constants; it returns
float32 in [0, 1]. Noise is drawn independently for every pixel and channel.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.robustness._common import Geometry

# Standard deviation of the added noise, per reference size.
GAUSSIAN_NOISE = {
    32: [0.04, 0.06, 0.08, 0.09, 0.10],
    64: [0.04, 0.08, 0.12, 0.15, 0.18],
    224: [0.08, 0.12, 0.18, 0.26, 0.38],
}
# Photon counts at full intensity: Poisson(x * c) / c.
SHOT_NOISE = {
    32: [500, 250, 100, 75, 50],
    64: [250, 100, 50, 30, 15],
    224: [60, 25, 12, 5, 3],
}
# Fraction of values replaced by 0 or 1 (half each).
IMPULSE_NOISE = {
    32: [0.01, 0.02, 0.03, 0.05, 0.07],
    64: [0.01, 0.02, 0.05, 0.08, 0.14],
    224: [0.03, 0.06, 0.09, 0.17, 0.27],
}
# Standard deviation of the multiplicative noise: x + x * N(0, c^2).
SPECKLE_NOISE = {
    32: [0.06, 0.1, 0.12, 0.16, 0.2],
    64: [0.15, 0.2, 0.25, 0.3, 0.35],
    224: [0.15, 0.2, 0.35, 0.45, 0.6],
}


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """`clip(x + N(0, c^2))`."""
    c = geo.pick(GAUSSIAN_NOISE, severity)
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(x + np.float32(c) * noise, 0, 1)


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """`clip(Poisson(x * c) / c)`: the photon noise of an exposure of `c` photons."""
    c = geo.pick(SHOT_NOISE, severity)
    counts = rng.poisson(x.astype(np.float64) * c)
    return np.clip(counts.astype(np.float32) / np.float32(c), 0, 1)


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """Salt and pepper: each value is replaced, with probability `c`, by 0 or 1 (even
    odds), as scikit-image's `random_noise(mode="s&p")`."""
    c = geo.pick(IMPULSE_NOISE, severity)
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    hit = u < c
    # Given a hit, u / c is uniform on [0, 1): its lower half salts, its upper half peppers.
    salt = u < np.float32(c / 2)
    out[hit] = 0.0
    out[salt] = 1.0
    return out


def speckle_noise(x: np.ndarray, severity: int, rng: np.random.Generator, geo: Geometry):
    """`clip(x + x * N(0, c^2))`: noise proportional to the intensity."""
    c = geo.pick(SPECKLE_NOISE, severity)
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(x + x * (np.float32(c) * noise), 0, 1)
