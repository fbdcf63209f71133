"""Filter health: are a network's filters structured or still noise, are units dead or
saturated, are layers moving, and one verdict per layer with the evidence behind it.

Modules: `structure` (noise test), `activity` (dead/saturated), `drift` (movement),
`spectral` (power-law alpha, spike test), `verdict` (rules and thresholds), `report`
(`filter_health`), `render` (grids with flagged filters outlined, the PNG report).
"""

from keras_cnnvis.health.report import (
    SCALARS,
    HealthReport,
    LayerHealth,
    filter_health,
    health_layers,
    layer_health,
    snapshot_kernels,
)
from keras_cnnvis.health.spectral import fit_powerlaw, spectral_scores
from keras_cnnvis.health.structure import ALPHA, structure_scores

__all__ = [
    "ALPHA",
    "SCALARS",
    "HealthReport",
    "LayerHealth",
    "filter_health",
    "fit_powerlaw",
    "health_layers",
    "layer_health",
    "snapshot_kernels",
    "spectral_scores",
    "structure_scores",
]
