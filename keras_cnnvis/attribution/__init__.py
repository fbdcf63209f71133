"""Attribution maps: which pixels drove a prediction (saliency, SmoothGrad, integrated
gradients, guided backprop, deconvnet, the CAM family, occlusion), plus checks and scores.
"""

from __future__ import annotations

from typing import Callable

from keras_cnnvis.attribution.cam import cam
from keras_cnnvis.attribution.grad_cam import (
    grad_cam,
    grad_cam_plus_plus,
    guided_grad_cam,
    layer_cam,
)
from keras_cnnvis.attribution.gradient_x_input import gradient_x_input
from keras_cnnvis.attribution.guided import deconvnet, guided_backprop
from keras_cnnvis.attribution.integrated_gradients import integrated_gradients
from keras_cnnvis.attribution.localization import energy_in_mask, pointing_game
from keras_cnnvis.attribution.occlusion import occlusion
from keras_cnnvis.attribution.saliency import saliency
from keras_cnnvis.attribution.sanity import SanityResult, sanity_check
from keras_cnnvis.attribution.score_cam import score_cam
from keras_cnnvis.attribution.smoothgrad import smoothgrad
from keras_cnnvis.attribution.targets import Target, resolve_target

METHODS: dict[str, Callable] = {
    "saliency": saliency,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "guided_backprop": guided_backprop,
    "deconvnet": deconvnet,
    "grad_cam": grad_cam,
    "guided_grad_cam": guided_grad_cam,
    "grad_cam_plus_plus": grad_cam_plus_plus,
    "layer_cam": layer_cam,
    "score_cam": score_cam,
    "cam": cam,
    "occlusion": occlusion,
}
"""Attribution methods by name. `"smoothgrad"` (SmoothGrad on saliency) is accepted by
`get_method` too."""


def _smooth_saliency(model, images, target=None, **kwargs):
    return smoothgrad(saliency, model, images, target=target, **kwargs)


_smooth_saliency.__name__ = "smoothgrad"


def get_method(name: str | Callable) -> Callable:
    """The attribution function called `name` (`"smoothgrad"`: SmoothGrad on saliency).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if callable(name):
        return name
    if name == "smoothgrad":
        return _smooth_saliency
    if name not in METHODS:
        raise ValueError(
            f"Unknown attribution method {name!r}; use one of "
            f"{sorted(list(METHODS) + ['smoothgrad'])}."
        )
    return METHODS[name]


__all__ = sorted(
    list(METHODS)
    + [
        "METHODS",
        "SanityResult",
        "Target",
        "energy_in_mask",
        "get_method",
        "pointing_game",
        "resolve_target",
        "sanity_check",
        "smoothgrad",
    ]
)
