"""Filter health: are a network's filters structured or still noise, are units dead or
saturated, are layers moving, and one verdict per layer with the evidence behind it.

Modules: `structure` (noise test), `activity` (dead/saturated), `drift` (movement),
`spectral` (power-law alpha, spike test), `verdict` (rules and thresholds), `layer`
(`layer_health`: one layer scored), `report` (`filter_health`: the model's report). Drawing
it (grids with flagged filters outlined, the PNG report) is `keras_cnnvis.rendering.health`.
"""

from keras_cnnvis.weights.health.layer import SCALARS, LayerHealth, layer_health
from keras_cnnvis.weights.health.report import (
    HealthReport,
    filter_health,
    health_layers,
    scored_layers,
    snapshot_kernels,
)
from keras_cnnvis.weights.health.spectral import fit_powerlaw, spectral_scores
from keras_cnnvis.weights.health.structure import ALPHA, structure_scores

__all__ = [
    "ALPHA",
    "SCALARS",
    "HealthReport",
    "LayerHealth",
    "filter_health",
    "fit_powerlaw",
    "health_layers",
    "layer_health",
    "scored_layers",
    "snapshot_kernels",
    "spectral_scores",
    "structure_scores",
]
