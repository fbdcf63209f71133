"""Nearest neighbours in feature space (default: the penultimate representation) and in pixel
space, and k-nearest-neighbour accuracy: does the network group images by meaning?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.features.embeddings import LayerFeatures, penultimate_layer
from keras_cnnvis.features.knn import METRICS, check_metric, nearest, vote_accuracy

# Names this module exposed before the extractor, the search and the vote were shared.
from keras_cnnvis.features.knn import knn_vote  # noqa: F401
from keras_cnnvis.model import BatchFunction, LayerInfo, find_layer, forward_until  # noqa: F401
from keras_cnnvis.model import iter_layers  # noqa: F401

as_labels = inputs.class_labels  # the 0.1 name of the one label rule

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


class FeatureFunction(LayerFeatures):
    """A compiled function from images to flat feature vectors `(N, D)` (float32).

    `LayerFeatures` called for its `vectors`: the model is run only up to the feature
    layer. With `layer=None` the features are the input of the last Dense layer (for the
    demo CNN, the output of `features`).

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
        super().__init__(model, layer, batch_size)
        self.capture = self.io
        if layer is None:
            self.description = f"{penultimate_layer(model).path}:input"
        else:
            self.description = self.info.path

    def __call__(self, images: Any) -> np.ndarray:  # type: ignore[override]
        return self.vectors(images)


def pixel_vectors(images: Any) -> np.ndarray:
    """Images flattened to float32 vectors `(N, H*W*C)` (the pixel space)."""
    images = np.asarray(images, np.float32)
    return images.reshape(len(images), -1)


def _check_space(space: str, metric: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}; got {space!r}.")
    check_metric(metric)


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
    if space == "feature":
        embed = FeatureFunction(model, layer, batch_size)
        ref, qry, desc = embed(data), embed(queries), embed.description
    else:
        ref, qry, desc = pixel_vectors(data), pixel_vectors(queries), None
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
    return vote_accuracy(nn.indices, y_ref, y_query)
