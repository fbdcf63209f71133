"""What the weight layers hold: each filter's kernel read out of a layer (`kernels`), filters
as image tiles and grids (`filters`), and filter health with a verdict per layer (`health`).

Everything here reads weights (and, for health, a layer's outputs on probe images) and returns
floats; drawing the grids and the health report is `keras_cnnvis.rendering`.
"""

from keras_cnnvis.weights.filters import FilterTiles, filter_grid, filter_tiles
from keras_cnnvis.weights.health import filter_health, layer_health, snapshot_kernels
from keras_cnnvis.weights.kernels import LayerKernel, layer_kernel, weight_layers

__all__ = [
    "FilterTiles",
    "LayerKernel",
    "filter_grid",
    "filter_health",
    "filter_tiles",
    "layer_health",
    "layer_kernel",
    "snapshot_kernels",
    "weight_layers",
]
