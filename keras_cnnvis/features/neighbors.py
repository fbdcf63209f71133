"""Nearest neighbours in feature space (default: the penultimate representation) and in pixel
space, and k-nearest-neighbour accuracy: does the network group images by meaning?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis import inputs
from keras_cnnvis.model import (
    BatchFunction,
    LayerInfo,
    find_layer,
    forward_until,
    iter_layers,
)

METRICS = ("cosine", "euclidean")
SPACES = ("feature", "pixel")


@dataclass
class Neighbors:
    """The k nearest reference examples of each query.

    Attributes:
        indices: int64 `(n_queries, k)` indices into the reference data, nearest first.
        distances: float32 `(n_queries, k)` their distances (ascending).
        space: `"feature"` or `"pixel"`.
        layer: what the feature space is (e.g. `"predictions:input"` for the input of the
            last Dense layer), or None in pixel space.
        metric: `"cosine"` or `"euclidean"`.
    """

    indices: np.ndarray
    distances: np.ndarray
    space: str
    layer: str | None
    metric: str


def penultimate_layer(model: keras.Model) -> LayerInfo:
    """The model's last Dense layer, whose input is the penultimate representation.

    Raises:
        ValueError: if the model has no Dense layer (pass a layer explicitly then).
    """
    dense = [i for i in iter_layers(model) if isinstance(i.layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(
            f"Model '{model.name}' has no Dense layer, so there is no default penultimate "
            "representation; pass layer=<name of the layer whose output to use>."
        )
    return dense[-1]


class FeatureFunction:
    """A compiled function from images to flat feature vectors `(N, D)` (float32).

    The model is run only up to the feature layer. With `layer=None` the features are the
    input of the last Dense layer (for the demo CNN, the output of `features`).

    Example:

    ```python
    embed = FeatureFunction(model)
    vectors = embed(x_val)  # (N, 64)
    ```

    Args:
        model: a single-input model.
        layer: the layer whose output is the feature vector (flattened), or None for the
            input of the last Dense layer. Defaults to None.
        batch_size: images per compiled call. Defaults to 64.

    Raises:
        ValueError: for an unknown layer, or no Dense layer when `layer` is None.
    """

    def __init__(self, model: keras.Model, layer: Any = None, batch_size: int = 64):
        self.model = model
        self.batch_size = int(batch_size)
        if layer is None:
            self.info = penultimate_layer(model)
            self.capture = "input"
            self.description = f"{self.info.path}:input"
        else:
            self.info = find_layer(model, layer)
            self.capture = "output"
            self.description = self.info.path
        self._fn = BatchFunction(self._forward)

    def _forward(self, x):
        (out,) = forward_until(self.model, [self.info.layer], x, capture=self.capture)
        out = tf.cast(out, tf.float32)
        return tf.reshape(out, [tf.shape(out)[0], -1])

    def __call__(self, images: Any) -> np.ndarray:
        images = np.asarray(images, np.float32)
        parts = [
            np.asarray(self._fn(tf.constant(images[s : s + self.batch_size])))
            for s in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def pixel_vectors(images: Any) -> np.ndarray:
    """Images flattened to float32 vectors `(N, H*W*C)` (the pixel space)."""
    images = np.asarray(images, np.float32)
    return images.reshape(len(images), -1)


def nearest(
    queries: np.ndarray, data: np.ndarray, k: int = 5, metric: str = "cosine", chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `data` for each row of `queries` (brute force, chunked).

    `"cosine"` distance is `1 - cos(angle)` (scale-free: a vector and its multiples are at
    distance 0; an all-zero vector is at distance 1 from everything); `"euclidean"` is
    the L2 distance. Ties go to the earlier data row.

    Example:

    ```python
    idx, dist = nearest(feats_val, feats_train, k=5, metric="euclidean")
    ```

    Args:
        queries: float `(Q, D)`.
        data: float `(N, D)`.
        k: neighbours per query. Defaults to 5.
        metric: `"cosine"` or `"euclidean"`. Defaults to `"cosine"`.
        chunk: queries per distance block (bounds memory at `chunk * N`). Defaults to 256.

    Returns:
        `(indices, distances)`: int64 and float32 `(Q, k)`, nearest first.

    Raises:
        ValueError: for an unknown metric, mismatched dimensions or `k` out of range.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
    q = np.asarray(queries, np.float64)
    d = np.asarray(data, np.float64)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(
            f"Queries and data must be (n, D) arrays of one dimension D; got {q.shape} and {d.shape}."
        )
    if not 1 <= k <= len(d):
        raise ValueError(
            f"k={k} must be between 1 and the {len(d)} reference examples; pass a smaller k."
        )
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    d_sq = np.sum(d * d, axis=1)
    idx_out, dist_out = [], []
    for s in range(0, len(q), chunk):
        block = q[s : s + chunk]
        if metric == "cosine":
            dist = 1.0 - block @ d.T
        else:
            sq = np.sum(block * block, axis=1)[:, None] + d_sq[None, :] - 2.0 * block @ d.T
            dist = np.sqrt(np.maximum(sq, 0.0))
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        idx_out.append(order)
        dist_out.append(np.take_along_axis(dist, order, axis=1))
    if not idx_out:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return np.concatenate(idx_out).astype(np.int64), np.concatenate(dist_out).astype(np.float32)


def knn_vote(neighbor_labels: np.ndarray) -> np.ndarray:
    """Majority class of each row of neighbour labels (nearest first); a tie goes to the
    tied class whose member is nearest."""
    neighbor_labels = np.asarray(neighbor_labels, np.int64)
    out = np.empty(len(neighbor_labels), np.int64)
    for i, row in enumerate(neighbor_labels):
        classes, counts = np.unique(row, return_counts=True)
        tied = set(classes[counts == counts.max()].tolist())
        out[i] = next(c for c in row if c in tied)
    return out


def _vectors(model, images, space, layer, batch_size, embed) -> tuple[np.ndarray, str | None]:
    if space == "pixel":
        return pixel_vectors(images), None
    embed = embed or FeatureFunction(model, layer, batch_size)
    return embed(images), embed.description


def _check_space(space: str, metric: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}; got {space!r}.")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")


def nearest_neighbors(
    model: keras.Model | None,
    queries: Any,
    data: Any,
    layer: Any = None,
    k: int = 5,
    space: str = "feature",
    metric: str = "cosine",
    batch_size: int = 64,
) -> Neighbors:
    """The k nearest images of `data` to each query, in feature or in pixel space.

    In feature space images are compared by the network's representation: by default
    the input of the last Dense layer (the penultimate layer), else the flattened output
    of `layer`. In pixel space they are compared as flattened pixel vectors (the model is
    not used). A trained network's feature-space neighbours share the query's class even
    when they look different; pixel-space neighbours share colours and layout.

    Example:

    ```python
    nn = nearest_neighbors(model, x_val[:8], x_train, k=5)
    y_train[nn.indices]  # classes of the neighbours, nearest first
    ```

    Args:
        model: the model (may be None for `space="pixel"`).
        queries: query images `(Q, H, W, C)`.
        data: reference images `(N, H, W, C)`.
        layer: the feature layer, or None for the penultimate representation.
            Defaults to None.
        k: neighbours per query. Defaults to 5.
        space: `"feature"` or `"pixel"`. Defaults to `"feature"`.
        metric: `"cosine"` (1 - cosine similarity) or `"euclidean"`. Defaults to
            `"cosine"`.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        A `Neighbors`.

    Raises:
        ValueError: for images of the wrong shape, `k` larger than the data, an unknown
            space, metric or layer, or a model without a Dense layer and no `layer`.
    """
    _check_space(space, metric)
    if model is None and space == "feature":
        raise ValueError("Feature-space neighbours need a model; pass model or space='pixel'.")
    queries = inputs.check_images(queries, model, "queries")
    data = inputs.check_images(data, model, "data images")
    if not 1 <= k <= len(data):
        raise ValueError(f"k={k} must be between 1 and the {len(data)} images in data.")
    embed = FeatureFunction(model, layer, batch_size) if space == "feature" else None
    ref, desc = _vectors(model, data, space, layer, batch_size, embed)
    qry, _ = _vectors(model, queries, space, layer, batch_size, embed)
    idx, dist = nearest(qry, ref, k, metric)
    return Neighbors(idx, dist, space, desc, metric)


def neighbor_accuracy(
    model: keras.Model | None,
    x_ref: Any,
    y_ref: Any,
    x_query: Any,
    y_query: Any,
    k: int = 5,
    space: str = "feature",
    layer: Any = None,
    metric: str = "cosine",
    batch_size: int = 64,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier in feature or pixel space.

    Each query gets the majority class of its k nearest reference examples (a tie goes
    to the nearest of the tied classes). On a trained network feature-space accuracy far
    above pixel-space accuracy shows the representation groups images by class.

    Example:

    ```python
    feat = neighbor_accuracy(model, x_train, y_train, x_val, y_val)
    pix = neighbor_accuracy(model, x_train, y_train, x_val, y_val, space="pixel")
    ```

    Args:
        model: the model (may be None for `space="pixel"`).
        x_ref, y_ref: reference images and their labels (ints or one-hot).
        x_query, y_query: query images and labels.
        k: neighbours that vote. Defaults to 5.
        space: `"feature"` or `"pixel"`. Defaults to `"feature"`.
        layer: the feature layer, or None for the penultimate representation.
            Defaults to None.
        metric: `"cosine"` or `"euclidean"`. Defaults to `"cosine"`.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        The fraction of queries classified correctly.

    Raises:
        ValueError: as `nearest_neighbors`, or labels that are not one per image.
    """
    y_ref = inputs.class_labels(y_ref, len(x_ref))
    y_query = inputs.class_labels(y_query, len(x_query))
    nn = nearest_neighbors(model, x_query, x_ref, layer, k, space, metric, batch_size)
    return float(np.mean(knn_vote(y_ref[nn.indices]) == y_query))
