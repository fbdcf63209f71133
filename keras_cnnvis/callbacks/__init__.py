"""Keras callbacks that log keras-cnnvis visualisations to TensorBoard during `fit`."""

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.callbacks.filter_grid import FilterGridCallback
from keras_cnnvis.callbacks.class_visualization import ClassVisualizationCallback
from keras_cnnvis.callbacks.activation_maps import ActivationMapsCallback
from keras_cnnvis.callbacks.filter_health import FilterHealthCallback

__all__ = [
    "MonitorCallback",
    "FilterGridCallback",
    "ClassVisualizationCallback",
    "ActivationMapsCallback",
    "FilterHealthCallback",
]
