"""Checks shared by the synthesis recipes: the channel count of a layer and the number of
classes of a model, found with one forward pass, for clear out-of-range errors.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from keras_cnnvis.inputs import n_classes_of
from keras_cnnvis.model import capture_outputs, find_layer, predict_fn
from keras_cnnvis.synthesis.render import _model_for


def probe_outputs(model: keras.Model, layers: Sequence[Any], shape: Sequence[int], preprocess=None):
    """(layer outputs, model output) for one mid-grey image of `shape` (eager call)."""
    model, resize_to = _model_for(model, shape[:2])
    size = resize_to or shape[:2]
    x = np.full((1, int(size[0]), int(size[1]), int(shape[2])), 0.5, np.float32)
    if preprocess is not None:
        x = preprocess(x)
    with capture_outputs(model, list(layers)) as cap:
        out = predict_fn(model)(x)
    return [np.asarray(t) for t in cap.ordered()], np.asarray(out)


def check_channels(model, layer, channels: Sequence[int], shape, preprocess=None) -> int:
    """Raises ValueError for channel indices out of range of `layer`; returns the count."""
    info = find_layer(model, layer)
    (acts,), _ = probe_outputs(model, [info.layer], shape, preprocess)
    n = int(acts.shape[-1])
    bad = [int(c) for c in channels if not -n <= int(c) < n]
    if bad:
        raise ValueError(
            f"Channel index {bad[0]} is out of range: layer '{info.path}' has {n} channels "
            f"(0..{n - 1})."
        )
    return n


def check_classes(model, classes: Sequence[int], shape, preprocess=None) -> int:
    """Raises ValueError for class indices out of range of the model's output; returns the
    number of classes (a one-unit binary head is two, the one rule of
    `keras_cnnvis.inputs`: class 1 is the unit, class 0 its opposite)."""
    _, out = probe_outputs(model, [], shape, preprocess)
    if out.ndim != 2:
        raise ValueError(
            f"Model '{model.name}' outputs shape {out.shape[1:]} per image, not a vector of "
            "class scores; choose a layer and channel instead (visualize_filter)."
        )
    n = n_classes_of(out)
    bad = [int(c) for c in classes if not 0 <= int(c) < n]
    if bad:
        what = f"has {n} classes (0..{n - 1})"
        if out.shape[-1] == 1:
            what = "is a binary classifier with one output unit (classes 0..1)"
        raise ValueError(f"Class index {bad[0]} is out of range: model '{model.name}' {what}.")
    return n
