"""Attribution maps: which pixels drove a prediction (saliency, SmoothGrad, integrated
gradients, guided backprop, deconvnet, the CAM family, occlusion), plus checks and scores
(localisation, the sanity check, faithfulness: deletion, insertion, MuFidelity).

Each method registers itself beside its function (`registry.register`); importing its
module here is what makes it known. The import order is the order the callbacks list them.
"""

from __future__ import annotations

from typing import Callable, Mapping

from keras_cnnvis.attribution.registry import FUNCTIONS, get_method
from keras_cnnvis.attribution.saliency import saliency
from keras_cnnvis.attribution.smoothgrad import smoothgrad
from keras_cnnvis.attribution.integrated_gradients import integrated_gradients
from keras_cnnvis.attribution.guided import deconvnet, guided_backprop
from keras_cnnvis.attribution.gradient_x_input import gradient_x_input
from keras_cnnvis.attribution.grad_cam import (
    grad_cam,
    grad_cam_plus_plus,
    guided_grad_cam,
    layer_cam,
)
from keras_cnnvis.attribution.score_cam import score_cam
from keras_cnnvis.attribution.cam import cam
from keras_cnnvis.attribution.occlusion import occlusion
from keras_cnnvis.attribution.localization import energy_in_mask, pointing_game
from keras_cnnvis.attribution.sanity import SanityResult, sanity_check
from keras_cnnvis.attribution.faithfulness import (
    CurveResult,
    FaithfulnessScores,
    MuFidelityResult,
    deletion_curve,
    faithfulness_scores,
    insertion_curve,
    mu_fidelity,
    random_reference,
)
from keras_cnnvis.attribution.targets import Target, resolve_target

METHODS: Mapping[str, Callable] = FUNCTIONS
"""Attribution methods by name (a read-only live view of the registry); `"smoothgrad"` is
SmoothGrad on saliency."""

__all__ = sorted(
    set(METHODS)
    | {
        "CurveResult",
        "FaithfulnessScores",
        "METHODS",
        "MuFidelityResult",
        "SanityResult",
        "Target",
        "deletion_curve",
        "energy_in_mask",
        "faithfulness_scores",
        "get_method",
        "insertion_curve",
        "mu_fidelity",
        "pointing_game",
        "random_reference",
        "resolve_target",
        "sanity_check",
        "smoothgrad",
    }
)
