"""The Network view of a model (CNN Explainer for any Keras model): every layer's output for one
image with the graph (`trace`), the arithmetic behind one unit (`units`) and the records the
Network page reads (`records`).
"""

from keras_cnnvis.network.trace import (
    INPUT_TYPE,
    LayerRecord,
    NetworkTracer,
    input_name,
    layer_config,
    network_trace,
)
from keras_cnnvis.network.units import unit_breakdown
from keras_cnnvis.network.records import NetworkSnapshot, network_snapshot

__all__ = [
    "INPUT_TYPE",
    "LayerRecord",
    "NetworkSnapshot",
    "NetworkTracer",
    "input_name",
    "layer_config",
    "network_snapshot",
    "network_trace",
    "unit_breakdown",
]
