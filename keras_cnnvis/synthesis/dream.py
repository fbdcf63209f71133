"""DeepDream: amplify what chosen layers already see in an image, by normalised gradient
ascent over octaves (small to large) with the detail re-injected at each larger scale.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.model import find_layer
from keras_cnnvis.synthesis import objectives as obj
from keras_cnnvis.synthesis import param as param_lib
from keras_cnnvis.synthesis import transforms as tr
from keras_cnnvis.synthesis.models import fit_image
from keras_cnnvis.synthesis.regularizers import keep_in_range
from keras_cnnvis.synthesis.render import Renderer, flexible_model
from keras_cnnvis.synthesis.samples import resize_image


def layer_weights(model: keras.Model, layers: Any) -> dict:
    """Normalises a layer choice (name, list or `{layer: weight}`) to `{path: weight}`."""
    if isinstance(layers, dict):
        items = list(layers.items())
    elif isinstance(layers, (str, int, keras.layers.Layer)):
        items = [(layers, 1.0)]
    else:
        items = [(layer, 1.0) for layer in layers]
    if not items:
        raise ValueError("Choose at least one layer.")
    return {find_layer(model, layer).path: float(w) for layer, w in items}


def dream_objective(model: keras.Model, layers: Any) -> obj.Objective:
    """The weighted sum of DeepDream objectives (mean squared activation) of `layers`."""
    return sum(w * obj.deepdream(path) for path, w in layer_weights(model, layers).items())


def octave_sizes(size: tuple, octaves: int, octave_scale: float, min_size: int = 16) -> list:
    """Image sizes from the smallest octave to `size` (never below `min_size` pixels)."""
    h, w = size
    out = []
    for k in reversed(range(int(octaves))):
        f = float(octave_scale) ** k
        s = (int(round(h / f)), int(round(w / f)))
        if min(s) >= min(min_size, h, w):
            out.append(s)
    return out or [tuple(size)]


def deep_dream(
    model: keras.Model,
    image: Any,
    layers: Any = "last_conv",
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    step_size: float = 0.01,
    jitter: int | None = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """DeepDream (Mordvintsev et al. 2015): amplifies the patterns layers respond to.

    At each octave (from `octave_scale ** (octaves-1)` times smaller up to full size) the
    image plus the detail dreamt so far is pushed up the gradient of the layers' mean
    squared activation, normalised per step, with random jitter. Low layers amplify
    strokes and textures, high layers object-like parts.

    Example:

    ```python
    dreamt = deep_dream(model, photo, layers={"conv2": 1.0, "conv3": 0.5})
    ```

    Args:
        model: a Keras image model.
        image: `(H, W, C)` in [0, 1]. Fixed-size models that cannot run at other sizes get
            it resized to their input size.
        layers: a layer, a list, or `{layer: weight}`. Defaults to `"last_conv"`.
        octaves: number of scales. Defaults to 3.
        octave_scale: size ratio between octaves. Defaults to 1.4.
        steps: ascent steps per octave. Defaults to 20.
        step_size: mean pixel change per step. Defaults to 0.01.
        jitter: random shift in pixels. Defaults to None (1/16 of the image side).
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar per octave. Defaults to False.

    Returns:
        The dreamt image, float32 `(H, W, C)` in [0, 1].

    Raises:
        ValueError: for an unknown layer, a bad image or a non-image model.
    """
    objective = dream_objective(model, layers)
    keep_size = flexible_model(model) is not None
    base = fit_image(image, model, resize=not keep_size)[0]
    sizes = octave_sizes(base.shape[:2], octaves, octave_scale)
    detail = np.zeros(sizes[0] + (base.shape[-1],), np.float32)
    result = base
    for size in sizes:
        octave_base = resize_image(base, size)
        detail = resize_image(detail, size, clip=False)
        start = np.clip(octave_base + detail, 0.0, 1.0)
        d = int(jitter) if jitter is not None else max(1, min(size) // 16)
        renderer = Renderer(
            model,
            objective,
            start.shape,
            param=lambda shape, batch, init, seed: param_lib.pixel_image(
                shape, batch, init=init, mode="raw", seed=seed
            ),
            init=start,
            transforms=[tr.jitter(d)],
            optimizer="normalized",
            learning_rate=step_size,
            regularizers=[keep_in_range()],
            preprocess=preprocess,
            seed=seed,
        )
        result = renderer.run(steps, progress=progress).images[0]
        detail = result - octave_base
    return result.astype(np.float32)
