"""Max-activating patches: the dataset images that excite a channel most, cropped to the peak
unit's receptive field (`mining`), with the image region around small fields (`context`), and
what that unit responds to inside its patch (`views`).

Receptive fields themselves are model plumbing (`keras_cnnvis.model.receptive_field`); the
grids are drawn by `keras_cnnvis.rendering.patches`.
"""

from keras_cnnvis.patches.context import check_context, context_origins, context_size, is_small
from keras_cnnvis.patches.mining import (
    MaxPatches,
    PatchMiner,
    check_k,
    max_activating_patches,
    seen_slices,
    window_band,
)
from keras_cnnvis.patches.views import VIEWS, unit_views

# Names `keras_cnnvis.patches` exposed before it became a package (it imported them).
from keras_cnnvis.inputs import check_image_shape, data_length, image_batches  # noqa: F401
from keras_cnnvis.model import find_layers, forward_until, input_shape  # noqa: F401
from keras_cnnvis.model import instance_function  # noqa: F401
from keras_cnnvis.model.receptive_field import ReceptiveField, receptive_field  # noqa: F401


class _Named:
    def __init__(self, name: str):
        self.name = name


def check_image_batch(batch, expected: tuple, model_name: str) -> None:
    """Raises ValueError if a batch's per-image shape is not `expected` (the 0.1 name of
    `keras_cnnvis.inputs.check_image_shape`)."""
    check_image_shape(batch, _Named(model_name), "data images", tuple(expected))


__all__ = [
    "VIEWS",
    "MaxPatches",
    "PatchMiner",
    "check_context",
    "check_k",
    "context_origins",
    "context_size",
    "is_small",
    "max_activating_patches",
    "seen_slices",
    "unit_views",
    "window_band",
]
