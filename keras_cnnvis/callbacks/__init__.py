"""Keras callbacks that log keras-cnnvis visualisations to TensorBoard during `fit`."""

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.callbacks.filter_grid import FilterGridCallback
from keras_cnnvis.callbacks.class_visualization import ClassVisualizationCallback
from keras_cnnvis.callbacks.activation_maps import ActivationMapsCallback
from keras_cnnvis.callbacks.filter_health import FilterHealthCallback
from keras_cnnvis.callbacks.grad_cam import GradCAMCallback
from keras_cnnvis.callbacks.occlusion import OcclusionCallback
from keras_cnnvis.callbacks.saliency import SaliencyCallback
from keras_cnnvis.callbacks.max_patches import MaxActivatingPatchesCallback
from keras_cnnvis.callbacks.neighbors import NearestNeighborsCallback
from keras_cnnvis.callbacks.confusion_matrix import ConfusionMatrixCallback
from keras_cnnvis.callbacks.embedding import EmbeddingCallback
from keras_cnnvis.callbacks.network import NetworkCallback
from keras_cnnvis.callbacks.robustness import RobustnessCallback
from keras_cnnvis.callbacks.cnnvis import CNNVisCallback

__all__ = [
    "MonitorCallback",
    "FilterGridCallback",
    "ClassVisualizationCallback",
    "ActivationMapsCallback",
    "FilterHealthCallback",
    "GradCAMCallback",
    "OcclusionCallback",
    "SaliencyCallback",
    "MaxActivatingPatchesCallback",
    "NearestNeighborsCallback",
    "ConfusionMatrixCallback",
    "EmbeddingCallback",
    "NetworkCallback",
    "RobustnessCallback",
    "CNNVisCallback",
]
