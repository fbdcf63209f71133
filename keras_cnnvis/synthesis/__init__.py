"""Optimisation-based visualisation: activation maximisation, DeepDream, feature inversion,
texture synthesis, style transfer, adversarial and fooling images, on any Keras image model.

The core is small and composable (Lucid's design): `objectives` (combined with `+`, `-`,
scalar `*`), image parameterisations in `param` (pixels; Fourier with decorrelated colour),
`transforms` (jitter, pad, scale, rotate, `compose`), `regularizers` (Yosinski et al. 2015)
and one compiled render loop (`render`, `Renderer`). The recipes are built on it.
"""

from keras_cnnvis.synthesis import objectives, param, regularizers, transforms
from keras_cnnvis.synthesis.adversarial import adversarial_example, fooling_image
from keras_cnnvis.synthesis.dream import deep_dream
from keras_cnnvis.synthesis.invert import invert_features, psnr
from keras_cnnvis.synthesis.maximize import visualize_class, visualize_filter
from keras_cnnvis.synthesis.models import application, load_model
from keras_cnnvis.synthesis.objectives import Objective
from keras_cnnvis.synthesis.param import fourier_image, pixel_image
from keras_cnnvis.synthesis.render import Renderer, RenderResult, objective_value, render
from keras_cnnvis.synthesis.samples import SAMPLE_NAMES, load_image, sample_image
from keras_cnnvis.synthesis.style import style_transfer, synthesize_texture

__all__ = [
    "Objective",
    "RenderResult",
    "Renderer",
    "SAMPLE_NAMES",
    "adversarial_example",
    "application",
    "deep_dream",
    "fooling_image",
    "fourier_image",
    "invert_features",
    "load_image",
    "load_model",
    "objective_value",
    "objectives",
    "param",
    "pixel_image",
    "psnr",
    "regularizers",
    "render",
    "sample_image",
    "style_transfer",
    "synthesize_texture",
    "transforms",
    "visualize_class",
    "visualize_filter",
]
