"""Learned features of a live model: which tensor is "the features" (by default the penultimate
representation), one compiled extractor for it, and one vector per image.

The 2-D projections live in `keras_cnnvis.features.projection`; their names are re-exported
here, where they were before the split.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis import inputs
from keras_cnnvis.features.projection import (  # noqa: F401  (the old home of these names)
    METHODS,
    MIN_POINTS,
    Projection,
    align,
    cap_indices,
    grid_assignment,
    project,
)
from keras_cnnvis.model import (
    BatchFunction,
    FeatureExtractor,
    LayerInfo,
    find_layer,
    forward_until,
    iter_layers,
)

SPATIAL_MODES = ("avg", "max", "flatten")


# -- which tensor is "the features" -------------------------------------------------------


def _producer(last: LayerInfo, infos: list[LayerInfo]) -> LayerInfo | None:
    """The layer whose output is `last.layer`'s input in a Functional/Sequential graph."""
    try:
        target = last.layer.input
    except (AttributeError, ValueError):  # subclassed model: no graph to look into
        return None
    prefix = last.path[: len(last.path) - len(last.name)]  # the same (nested) model
    for info in infos:
        if info.layer is last.layer or not info.path.startswith(prefix):
            continue
        try:
            if info.layer.output is target:
                return info
        except (AttributeError, ValueError):  # never called, or called several times
            continue
    return None


def penultimate_layer(model: keras.Model) -> LayerInfo:
    """The model's last Dense layer, whose input is the penultimate representation.

    Raises:
        ValueError: if the model has no Dense layer (pass a layer explicitly then).
    """
    dense = [i for i in iter_layers(model) if isinstance(i.layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(
            f"Model '{model.name}' has no Dense layer, so there is no penultimate layer to "
            "default to: pass layer=<the feature layer> (e.g. layer='last_conv'; spatial maps "
            "become one vector per image). Pass layer=None only for models with a Dense head."
        )
    return dense[-1]


def feature_layer(model: keras.Model, layer: Any = None) -> tuple[LayerInfo, str]:
    """Which tensor is "the features": a layer and whether its output or input is read.

    With `layer=None` the features are the input of the model's last `Dense` layer (the
    penultimate representation, see `penultimate_layer`). In Functional and Sequential
    models that is the output of the layer feeding it (e.g. `"features"` in the demo
    model), which is returned with `"output"`; otherwise (subclassed models) the last
    Dense layer with `"input"`.

    Example:

    ```python
    info, io = feature_layer(model)  # (LayerInfo('features', ...), "output")
    ```

    Args:
        model: a Keras model of any kind.
        layer: a layer reference (path, name, index, object; see `find_layer`).
            Defaults to None (the input of the last Dense layer).

    Returns:
        `(LayerInfo, "output" or "input")`.

    Raises:
        ValueError: for an unknown layer, or `layer=None` on a model without a Dense layer.
    """
    if layer is not None:
        return find_layer(model, layer), "output"
    last = penultimate_layer(model)
    producer = _producer(last, list(iter_layers(model)))
    return (producer, "output") if producer is not None else (last, "input")


class LayerFeatures:
    """Compiled, batched access to one feature tensor of a live model: the one extractor.

    Keep one per model and layer to avoid retracing (callbacks build it once in `setup`).
    The layer is resolved with `feature_layer`. Calling it gives the raw features and the
    model's outputs from one `FeatureExtractor` pass; `vectors` gives flat feature vectors
    from a truncated pass (`forward_until`: the layers after the features never run).
    Both share every weight with the live model.

    Example:

    ```python
    source = LayerFeatures(model)           # input of the last Dense layer
    raw, probs = source(x_val, outputs=True)
    flat = source.vectors(x_val)            # (N, D), the head never runs
    ```

    Args:
        model: the model.
        layer: a layer reference or None (see `feature_layer`). Defaults to None.
        batch_size: images per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model: 256 for the demo CNN at 64x64).

    Raises:
        ValueError: for an unknown layer, or no Dense layer when `layer` is None.
    """

    def __init__(self, model: keras.Model, layer: Any = None, batch_size: int | None = None):
        self.model = model
        self.info, self.io = feature_layer(model, layer)
        self.batch_size = None if batch_size is None else max(1, int(batch_size))
        # One pass gives the features (the layer's output, or its input) and the outputs.
        self._both = FeatureExtractor(model, [self.info.layer], self.batch_size, capture=self.io)
        # The truncated pass, traced only when `vectors` is used.
        self._fn = BatchFunction(self._until)

    @property
    def label(self) -> str:
        """The layer path, with `" (input)"` when its input is read."""
        return self.info.path if self.io == "output" else f"{self.info.path} (input)"

    def probe(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(raw features, model outputs)` of a few images, run eagerly (nothing traced).

        For checks before training: tracing the compiled function costs far more than
        running a couple of images, and a monitor may never need it.
        """
        (feats,), outs = self._both.eager(images)
        return feats, outs

    def __call__(self, images: np.ndarray, outputs: bool = False) -> tuple[np.ndarray, Any]:
        """Returns `(raw features (N, ...), model outputs or None)` as float32 numpy."""
        (feats,), outs = self._both(np.asarray(images, np.float32))
        return feats, (outs if outputs else None)

    def _until(self, x):
        (out,) = forward_until(self.model, [self.info.layer], x, capture=self.io)
        out = tf.cast(out, tf.float32)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    def vectors(self, images: Any) -> np.ndarray:
        """Flattened float32 features `(N, D)` (positions kept) from a truncated pass."""
        images = np.asarray(images, np.float32)
        batch = self._both.batch_for(images.shape[1:])
        parts = [
            np.asarray(self._fn(tf.constant(images[s : s + batch])))
            for s in range(0, len(images), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def _as_images(data: Any, model: keras.Model) -> np.ndarray:
    batches = list(inputs.image_batches(data))
    if not batches:
        raise ValueError("The images batch is empty; pass at least one image.")
    return inputs.check_images(np.concatenate(batches), model, "images", finite=False)


def check_spatial(spatial: str) -> None:
    """Raises ValueError unless `spatial` is one of `SPATIAL_MODES`."""
    if spatial not in SPATIAL_MODES:
        raise ValueError(f"spatial must be one of {SPATIAL_MODES}; got {spatial!r}.")


def flatten_features(
    features: np.ndarray, spatial: str = "avg", name: str = "the layer", warn: bool = True
) -> np.ndarray:
    """Turns per-example outputs into one feature vector per example.

    `(N, D)` is returned as is. Outputs with spatial axes, e.g. conv maps `(N, H, W, C)`,
    are pooled over every axis but the first and last (`"avg"`: global average pooling,
    the default; `"max"`: global max pooling) or flattened (`"flatten"`: keeps positions,
    H*W*C dimensions), and a warning says so.

    Example:

    ```python
    flatten_features(np.ones((2, 4, 4, 8)))  # (2, 8), with a UserWarning
    ```

    Args:
        features: `(N, ...)` outputs of one layer.
        spatial: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
        name: the layer's name, for the warning. Defaults to `"the layer"`.
        warn: warn when the outputs are pooled or flattened. Defaults to True.

    Returns:
        A float32 `(N, D)` array.

    Raises:
        ValueError: for an unknown `spatial` mode or rank-1 outputs.
    """
    check_spatial(spatial)
    features = np.asarray(features, np.float32)
    if features.ndim < 2:
        raise ValueError(
            f"Features need a batch axis and a feature axis (N, D); got shape {features.shape}."
        )
    if features.ndim == 2:
        return features
    shape = features.shape[1:]
    if spatial == "flatten":
        out = features.reshape(len(features), -1)
        what = f"flattens them to {out.shape[1]} features per example (positions kept)"
    else:
        axes = tuple(range(1, features.ndim - 1))
        out = features.mean(axis=axes) if spatial == "avg" else features.max(axis=axes)
        pool = "average" if spatial == "avg" else "max"
        what = f"global-{pool}-pools them to {out.shape[1]} features per example"
    if warn:
        warnings.warn(
            f"{name} outputs spatial maps of shape {shape}; keras-cnnvis {what}. Choose a "
            "flat layer (layer=None takes the input of the last Dense layer) or set "
            f"spatial= to one of {SPATIAL_MODES}.",
            UserWarning,
            stacklevel=3,
        )
    return np.ascontiguousarray(out, dtype=np.float32)


def extract_features(
    model: keras.Model,
    data: Any,
    layer: Any = None,
    batch_size: int | None = None,
    spatial: str = "avg",
    return_outputs: bool = False,
    warn: bool = True,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One feature vector per image from a layer of the live model.

    The default is the penultimate representation: the input of the last `Dense` layer
    (see `feature_layer`). Works on Functional, Sequential, nested and subclassed models;
    the forward pass is compiled and batched (each call compiles anew: keep a
    `LayerFeatures` to reuse the compiled function over many calls). A layer with spatial
    output is pooled (or flattened) with a warning (see `flatten_features`).

    Example:

    ```python
    feats = extract_features(model, x_val)                  # (N, 64) for the demo model
    maps = extract_features(model, x_val, layer="conv4")    # pooled, with a warning
    ```

    Args:
        model: a Keras model with one image input.
        data: images `(N, H, W, C)` (numpy or tensor), or a `tf.data.Dataset` of image
            batches or `(images, labels)` batches.
        layer: a layer reference. Defaults to None (the input of the last Dense layer).
        batch_size: images per compiled call. Defaults to None (`model.compiled.
            batch_size_for` the model).
        spatial: how spatial outputs become vectors: `"avg"`, `"max"` or `"flatten"`.
            Defaults to `"avg"`.
        return_outputs: also return the model's outputs (e.g. class probabilities).
            Defaults to False.
        warn: warn when outputs are pooled. Defaults to True.

    Returns:
        A float32 `(N, D)` array, or `(features, outputs)` with `return_outputs=True`.

    Raises:
        ValueError: for an unknown layer, a model without a Dense layer and no `layer`,
            an empty batch or an unknown `spatial` mode.
    """
    check_spatial(spatial)
    images = _as_images(data, model)
    extractor = LayerFeatures(model, layer, batch_size)
    raw, outputs = extractor(images, return_outputs)
    feats = flatten_features(raw, spatial, f"Layer '{extractor.label}'", warn)
    return (feats, outputs) if return_outputs else feats
