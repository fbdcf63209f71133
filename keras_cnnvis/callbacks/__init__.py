"""Keras callbacks that log keras-cnnvis visualisations to TensorBoard during `fit`."""

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.callbacks.filter_grid import FilterGridCallback
from keras_cnnvis.callbacks.class_visualization import ClassVisualizationCallback

__all__ = ["MonitorCallback", "FilterGridCallback", "ClassVisualizationCallback"]
