"""Shared helpers of the attribution methods: input checks, channel reductions, resizing, and
the call into the one compiled gradient seam (`keras_cnnvis.model.gradient_function`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis import inputs
from keras_cnnvis.attribution.targets import ClassScore, Target, resolve_target
from keras_cnnvis.model import (
    GradientResult,
    LayerInfo,
    find_layer,
    gradient_function,
    output_activation,
)
from keras_cnnvis.model.layers import output_shape

REDUCTIONS = (None, "sum", "abs_sum", "max_abs", "l2")


def check_images(model: keras.Model, images: Any) -> np.ndarray:
    """`keras_cnnvis.inputs.check_images` for the images an attribution method explains."""
    return inputs.check_images(images, model, "images")


def reduce_channels(values: np.ndarray, reduce: str | None) -> np.ndarray:
    """Reduces `(N, H, W, C)` attributions over channels to `(N, H, W)` maps.

    `None` keeps the channels, `"sum"` sums signed values (keeps completeness),
    `"abs_sum"` sums magnitudes, `"max_abs"` takes the largest magnitude (Simonyan's
    saliency), `"l2"` the Euclidean norm.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}.")
    if reduce is None:
        return values.astype(np.float32)
    values = np.asarray(values, np.float32)
    # Folding over channel slices is ~10x faster than numpy's reduction over a short
    # contiguous last axis.
    channels = [values[..., c] for c in range(values.shape[-1])]
    if reduce == "sum":
        pieces, fold = channels, np.add
    elif reduce == "abs_sum":
        pieces, fold = [np.abs(c) for c in channels], np.add
    elif reduce == "max_abs":
        pieces, fold = [np.abs(c) for c in channels], np.maximum
    else:
        pieces, fold = [c * c for c in channels], np.add
    out = pieces[0].copy()
    for piece in pieces[1:]:
        fold(out, piece, out=out)
    return np.sqrt(out) if reduce == "l2" else out


def upsample(maps: np.ndarray, size: tuple) -> np.ndarray:
    """Bilinearly resizes `(N, h, w)` maps to `size = (H, W)` (half-pixel centres)."""
    maps = np.asarray(maps, np.float32)
    if maps.shape[1:3] == tuple(size):
        return maps
    out = tf.image.resize(maps[..., None], tuple(int(s) for s in size), "bilinear")
    return out.numpy()[..., 0]


def spatial_layer(model: keras.Model, layer: Any, method: str) -> LayerInfo:
    """Finds the layer a CAM method reads and checks it has a spatial output.

    Raises:
        ValueError: for an unknown layer or one whose output is not `(N, h, w, channels)`.
    """
    info = find_layer(model, layer)
    shape = output_shape(info.layer)
    if shape is not None and len(shape) != 4:
        raise ValueError(
            f"{method} needs a layer with a spatial output (batch, height, width, "
            f"channels); layer '{info.path}' outputs {shape}. Use a convolution layer, "
            "e.g. layer='last_conv'."
        )
    return info


def check_spatial(values: np.ndarray, path: str, method: str) -> None:
    """Run-time version of `spatial_layer` for models whose layer shapes are unknown."""
    if values.ndim != 4:
        raise ValueError(
            f"{method} needs a layer with a spatial output (batch, height, width, "
            f"channels); layer '{path}' outputs shape {values.shape}. Use a convolution "
            "layer, e.g. layer='last_conv'."
        )


def run(
    model: keras.Model,
    images: np.ndarray,
    target: Target,
    wrt: Any = "input",
    capture: tuple = (),
    relu: str | None = None,
    logits: bool = True,
    batch_size: int = 64,
) -> GradientResult:
    """Calls the compiled seam for a resolved target; `hidden` holds `capture` in order."""
    paths = tuple(find_layer(model, c).path for c in capture)
    score_fn = target.score_fn
    if isinstance(score_fn, ClassScore):
        # A one-unit sigmoid head reads probabilities unless logits=True made it linear.
        score_fn = score_fn.reading(output_activation(model).name == "sigmoid" and not logits)
    fn = gradient_function(
        model,
        score_fn,
        wrt=wrt,
        capture=paths + tuple(p for p in target.capture if p not in paths),
        relu=relu,
        logits=logits,
        image_shape=images.shape[1:],
        arg_specs=target.arg_specs,
    )
    result = fn(images, *target.args, batch_size=batch_size)
    result.hidden = result.hidden[: len(paths)]
    return result


def resolve(model: keras.Model, images: np.ndarray, target: Any) -> Target:
    """`resolve_target` for a batch of images."""
    if isinstance(target, Target):
        return target
    return resolve_target(model, target, len(images))


def clean_run(
    model: keras.Model,
    images: np.ndarray,
    target: Any,
    logits: bool,
    batch_size: int = 64,
    capture: tuple = (),
) -> tuple[Target, GradientResult]:
    """Runs the unaltered images once (forward only) and fixes a predicted-class target on
    them: `ceil(N / batch_size)` compiled calls.

    Returns the resolved target (class targets hold the class of each image) and the
    pass's result: the score of each image for it and, in `hidden`, the `capture` layers.
    """
    resolved = resolve(model, images, target)
    result = run(
        model, images, resolved, wrt=None, capture=capture, logits=logits, batch_size=batch_size
    )
    if resolved.kind == "class" and (resolved.args[0] < 0).any():
        resolved = resolved.with_classes(result.aux)
    return resolved, result


def clean_pass(
    model: keras.Model, images: np.ndarray, target: Any, logits: bool, batch_size: int = 64
) -> tuple[Target, np.ndarray]:
    """Scores the unaltered images once and fixes a predicted-class target on them.

    Returns the resolved target (class targets hold the class of each image) and the
    float32 `(N,)` score of each image for it: `ceil(N / batch_size)` compiled calls.
    """
    resolved, result = clean_run(model, images, target, logits, batch_size)
    return resolved, np.asarray(result.scores, np.float32)


def fixed_target(model, images, target, logits: bool, batch_size: int = 64) -> Target:
    """Resolves the target and, for class targets, fixes the class of each image now.

    Used by methods that run the model on altered copies (noise, paths, occlusion,
    masks, randomised weights): the explained class is the one of the original image.
    The model runs (`clean_pass`) only when a class is still to be predicted.
    """
    resolved = resolve(model, images, target)
    if resolved.kind == "class" and (resolved.args[0] < 0).any():
        return clean_pass(model, images, resolved, logits, batch_size)[0]
    return resolved
