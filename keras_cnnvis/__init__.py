"""keras-cnnvis: see what a convolutional network learns while it learns.

Keras callbacks that log visualisations to TensorBoard, plus standalone functions. Names
are imported lazily, so `import keras_cnnvis` (and the `cnnvis` command) start fast.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "FeatureExtractor": "keras_cnnvis.model",
    "capture_outputs": "keras_cnnvis.model",
    "conv_layers": "keras_cnnvis.model",
    "find_layer": "keras_cnnvis.model",
    "iter_layers": "keras_cnnvis.model",
    "filter_grid": "keras_cnnvis.weights.filters",
    "filter_tiles": "keras_cnnvis.weights.filters",
    "MonitorCallback": "keras_cnnvis.callbacks",
    "FilterGridCallback": "keras_cnnvis.callbacks",
    "CNNVisCallback": "keras_cnnvis.callbacks",
    "build_demo_model": "keras_cnnvis.demo",
    "visualize_filter": "keras_cnnvis.synthesis",
    "visualize_class": "keras_cnnvis.synthesis",
    "deep_dream": "keras_cnnvis.synthesis",
    "invert_features": "keras_cnnvis.synthesis",
    "synthesize_texture": "keras_cnnvis.synthesis",
    "style_transfer": "keras_cnnvis.synthesis",
    "adversarial_example": "keras_cnnvis.synthesis",
    "fooling_image": "keras_cnnvis.synthesis",
    "render": "keras_cnnvis.synthesis",
    "sample_image": "keras_cnnvis.synthesis",
    "ClassVisualizationCallback": "keras_cnnvis.callbacks",
    "layer_kernel": "keras_cnnvis.weights.filters",
    "activation_maps": "keras_cnnvis.activations",
    "activation_grid": "keras_cnnvis.activations",
    "filter_health": "keras_cnnvis.weights.health",
    "snapshot_kernels": "keras_cnnvis.weights.health",
    "ActivationMapsCallback": "keras_cnnvis.callbacks",
    "FilterHealthCallback": "keras_cnnvis.callbacks",
    "GradCAMCallback": "keras_cnnvis.callbacks",
    "SaliencyCallback": "keras_cnnvis.callbacks",
    "OcclusionCallback": "keras_cnnvis.callbacks",
    "saliency": "keras_cnnvis.attribution",
    "smoothgrad": "keras_cnnvis.attribution",
    "gradient_x_input": "keras_cnnvis.attribution",
    "integrated_gradients": "keras_cnnvis.attribution",
    "guided_backprop": "keras_cnnvis.attribution",
    "deconvnet": "keras_cnnvis.attribution",
    "grad_cam": "keras_cnnvis.attribution",
    "guided_grad_cam": "keras_cnnvis.attribution",
    "grad_cam_plus_plus": "keras_cnnvis.attribution",
    "layer_cam": "keras_cnnvis.attribution",
    "score_cam": "keras_cnnvis.attribution",
    "cam": "keras_cnnvis.attribution",
    "occlusion": "keras_cnnvis.attribution",
    "sanity_check": "keras_cnnvis.attribution",
    "energy_in_mask": "keras_cnnvis.attribution",
    "pointing_game": "keras_cnnvis.attribution",
    "extract_features": "keras_cnnvis.features.embeddings",
    "project": "keras_cnnvis.features.projection",
    "trustworthiness": "keras_cnnvis.features.scores",
    "knn_accuracy": "keras_cnnvis.features.scores",
    "write_embedding": "keras_cnnvis.features.projector",
    "EmbeddingCallback": "keras_cnnvis.callbacks",
    "receptive_field": "keras_cnnvis.model.receptive_field",
    "max_activating_patches": "keras_cnnvis.patches",
    "unit_views": "keras_cnnvis.patches",
    "nearest_neighbors": "keras_cnnvis.features.neighbors",
    "neighbor_accuracy": "keras_cnnvis.features.neighbors",
    "confusion_matrix": "keras_cnnvis.confusion",
    "per_class_accuracy": "keras_cnnvis.confusion",
    "MaxActivatingPatchesCallback": "keras_cnnvis.callbacks",
    "NearestNeighborsCallback": "keras_cnnvis.callbacks",
    "ConfusionMatrixCallback": "keras_cnnvis.callbacks",
    # 0.2: the model's anatomy and head, analysis of saved models, robustness, faithfulness
    "model_anatomy": "keras_cnnvis.model.anatomy",
    "model_head": "keras_cnnvis.model.head",
    "analyze": "keras_cnnvis.analysis",
    "corrupt": "keras_cnnvis.robustness",
    "corruption_accuracy": "keras_cnnvis.robustness",
    "corruption_error": "keras_cnnvis.robustness",
    "adversarial_accuracy": "keras_cnnvis.robustness",
    "load_corrupted": "keras_cnnvis.robustness",
    "deletion_curve": "keras_cnnvis.attribution",
    "insertion_curve": "keras_cnnvis.attribution",
    "mu_fidelity": "keras_cnnvis.attribution",
}
_SUBMODULES = (
    "callbacks",
    "datasets",
    "filters",
    "gradients",
    "image",
    "inputs",
    "model",
    "robustness",
    "summary",
)

# Modules that moved in the restructuring of 0.2: the old import paths keep working
# (`import keras_cnnvis.gradients` gives `keras_cnnvis.model`). A key ending in "." maps a
# whole package prefix; exact keys win over prefixes. An old path is aliased only once no
# module file is left there.
_MOVED = {
    "keras_cnnvis.gradients": "keras_cnnvis.model",
    "keras_cnnvis.receptive_field": "keras_cnnvis.model.receptive_field",
    "keras_cnnvis.image": "keras_cnnvis.rendering.image",
    "keras_cnnvis.embedding_plots": "keras_cnnvis.rendering.embedding",
    "keras_cnnvis.embeddings": "keras_cnnvis.features.embeddings",
    "keras_cnnvis.embedding_scores": "keras_cnnvis.features.scores",
    "keras_cnnvis.projector": "keras_cnnvis.features.projector",
    "keras_cnnvis.neighbors": "keras_cnnvis.features.neighbors",
    "keras_cnnvis.filters": "keras_cnnvis.weights.filters",
    "keras_cnnvis.health.render": "keras_cnnvis.rendering.health",
    "keras_cnnvis.health": "keras_cnnvis.weights.health",
    "keras_cnnvis.health.": "keras_cnnvis.weights.health.",
}
_HERE = os.path.dirname(os.path.abspath(__file__))


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module that now holds its names."""

    @staticmethod
    def target(name: str) -> str | None:
        """Where the module `name` lives now, or None if it has not moved."""
        parts = name.split(".")[1:]
        base = os.path.join(_HERE, *parts)
        if os.path.exists(base + ".py") or os.path.exists(os.path.join(base, "__init__.py")):
            return None  # still here
        if name in _MOVED:
            return _MOVED[name]
        for old, new in _MOVED.items():
            if old.endswith(".") and name.startswith(old):
                return new + name[len(old) :]
        return None

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("keras_cnnvis.") or self.target(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(self.target(spec.name))
        self._spec = module.__spec__  # the import system overwrites it; put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

__all__ = sorted(list(_EXPORTS) + list(_SUBMODULES))


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        module = f"keras_cnnvis.{name}"
        value = importlib.import_module(_MovedModules.target(module) or module)
    else:
        raise AttributeError(f"module 'keras_cnnvis' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__():
    return __all__


class _Package(types.ModuleType):
    """Keeps exported functions when a submodule of the same name is imported (importing
    `keras_cnnvis.receptive_field`, the module, must not replace the function
    `keras_cnnvis.receptive_field`)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            return  # an exported function or class keeps its name
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
