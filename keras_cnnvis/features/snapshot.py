"""The embedding monitor's core: one snapshot of a layer's feature space (features, predicted
classes, kNN accuracy, PCA/t-SNE layouts warm-started from the previous ones, their scores) and
its record for the cnnvis tab, as plain numpy and dicts. Nothing is drawn or written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.features.embeddings import LayerFeatures, check_spatial, flatten_features
from keras_cnnvis.features.projection import METHODS, Projection, project
from keras_cnnvis.features.scores import knn_accuracy, trustworthiness
from keras_cnnvis.model import output_activation


@dataclass(frozen=True)
class EmbeddingSnapshot:
    """A layer's feature space at one moment of training.

    Attributes:
        layer: what the features are (`LayerFeatures.label`, e.g. `"features"`).
        features: float32 `(n, D)` one vector per image.
        labels: int64 `(n,)` the images' classes.
        predictions: int64 `(n,)` the model's predicted classes
            (`inputs.predicted_classes`), or None when the features are not finite.
        knn_accuracy: leave-one-out k-NN accuracy of the labels in feature space, or None
            when the features are not finite.
        projections: `{method: Projection}` for each method asked for.
        scores: `{method: {"trustworthiness": t, "knn_accuracy": a}}`.
        nonfinite: rows of `features` holding NaN or inf. When it is not 0 (a diverged
            model) nothing else was computed.
    """

    layer: str
    features: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray | None = None
    knn_accuracy: float | None = None
    projections: dict[str, Projection] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    nonfinite: int = 0

    @property
    def layouts(self) -> dict[str, np.ndarray]:
        """`{method: points}`: the `previous` argument of the next snapshot."""
        return {method: proj.points for method, proj in self.projections.items()}


def check_methods(methods: str | Sequence[str]) -> tuple[str, ...]:
    """`methods` as a tuple, or ValueError unless it is a non-empty subset of `METHODS`."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods or any(m not in METHODS for m in methods):
        raise ValueError(f"methods must be a non-empty subset of {METHODS}; got {methods!r}.")
    return methods


def embedding_snapshot(
    source: LayerFeatures | keras.Model,
    images: Any,
    labels: Any,
    methods: str | Sequence[str] = METHODS,
    previous: Mapping[str, np.ndarray] | None = None,
    layer: Any = None,
    spatial: str = "avg",
    max_points: int = 1000,
    perplexity: float = 30.0,
    tsne_iter: int = 500,
    knn_k: int = 5,
    seed: int = 0,
    activation: str | None = None,
) -> EmbeddingSnapshot:
    """Features, predictions, kNN accuracy and 2-D layouts of images, in one call.

    Runs the model once (`LayerFeatures`: features and outputs in one pass), turns the
    features into vectors (`flatten_features`, no warning), and stops there when any row
    is NaN or infinite (`nonfinite` says how many). Otherwise it reads the predicted
    classes (`inputs.predicted_classes`, any classifier head), the leave-one-out kNN
    accuracy, and projects with each method: t-SNE starts from `previous[method]` when it
    is a layout of as many points (a warm start aligned onto it; PCA flips its axes to
    agree), and each layout is scored by its trustworthiness.

    Example:

    ```python
    first = embedding_snapshot(model, x_val, y_val, ("pca", "tsne"))
    later = embedding_snapshot(model, x_val, y_val, ("pca", "tsne"), first.layouts)
    later.scores["tsne"]["trustworthiness"]
    ```

    Args:
        source: a `LayerFeatures` (reused, so nothing is traced again) or a model.
        images: `(n, H, W, C)` images, at least 4.
        labels: their classes (integers or one-hot rows).
        methods: any of `"pca"`, `"tsne"`. Defaults to both.
        previous: `{method: (n_points, 2) layout}` of the last snapshot of the same
            images. Defaults to None (fresh layouts).
        layer: the feature layer when `source` is a model (see `feature_layer`).
            Defaults to None (the input of the last Dense layer).
        spatial: how spatial outputs become vectors (`"avg"`, `"max"`, `"flatten"`).
            Defaults to `"avg"`.
        max_points: the most points a projection runs on. Defaults to 1000.
        perplexity: t-SNE perplexity. Defaults to 30.0.
        tsne_iter: t-SNE iterations of a fresh layout. Defaults to 500.
        knn_k: neighbours of the kNN accuracy. Defaults to 5.
        seed: seed of the point cap and of t-SNE. Defaults to 0.
        activation: the model's output activation name. Defaults to None (read from the
            model with `keras_cnnvis.model.output_activation`).

    Returns:
        An `EmbeddingSnapshot`.

    Raises:
        ValueError: for an unknown method or spatial mode, images the model cannot take,
            labels that are not one per image, or fewer than 4 images.
    """
    methods = check_methods(methods)
    check_spatial(spatial)
    if not isinstance(source, LayerFeatures):
        source = LayerFeatures(source, layer)
    images = inputs.check_images(images, source.model, "embedding images")
    labels = inputs.class_labels(labels, len(images))
    raw, outputs = source(images, outputs=True)
    if activation is None:
        activation = output_activation(source.model).name
    return snapshot_of_features(
        source.label,
        raw,
        outputs,
        labels,
        methods,
        previous,
        spatial=spatial,
        max_points=max_points,
        perplexity=perplexity,
        tsne_iter=tsne_iter,
        knn_k=knn_k,
        seed=seed,
        activation=activation,
    )


def snapshot_of_features(
    layer: str,
    raw: np.ndarray,
    outputs: Any,
    labels: np.ndarray,
    methods: Sequence[str] = METHODS,
    previous: Mapping[str, np.ndarray] | None = None,
    spatial: str = "avg",
    max_points: int = 1000,
    perplexity: float = 30.0,
    tsne_iter: int = 500,
    knn_k: int = 5,
    seed: int = 0,
    activation: str = "softmax",
) -> EmbeddingSnapshot:
    """The model-free part of `embedding_snapshot`: from features and outputs already
    computed to predictions, kNN accuracy and scored layouts (what the embedding monitor
    runs on its background worker).

    Example:

    ```python
    raw, outputs = LayerFeatures(model)(x_val, outputs=True)
    snap = snapshot_of_features("features", raw, outputs, y_val, ("pca",))
    ```

    Args:
        layer: what the features are (`LayerFeatures.label`).
        raw: the feature layer's outputs `(n, ...)`.
        outputs: the model's outputs on the same images.
        labels: their classes `(n,)` (integers).
        methods, previous, spatial, max_points, perplexity, tsne_iter, knn_k, seed: as
            for `embedding_snapshot`.
        activation: the model's output activation name. Defaults to `"softmax"`.

    Returns:
        An `EmbeddingSnapshot`.
    """
    methods = check_methods(methods)
    labels = np.asarray(labels)
    feats = flatten_features(raw, spatial, warn=False)
    bad = int((~np.isfinite(feats).all(axis=1)).sum())
    if bad:
        return EmbeddingSnapshot(layer, feats, labels, nonfinite=bad)
    preds = inputs.predicted_classes(outputs, activation)
    knn = knn_accuracy(feats, labels, knn_k)
    n_points = min(len(feats), int(max_points))
    projections, scores = {}, {}
    for method in methods:
        init = (previous or {}).get(method)
        if init is not None and np.shape(init) != (n_points, 2):
            init = None  # a layout of other points cannot start this one
        proj = project(
            feats,
            method,
            init=init,
            max_points=max_points,
            seed=seed,
            perplexity=perplexity,
            max_iter=tsne_iter,
        )
        projections[method] = proj
        trust = trustworthiness(feats[proj.indices], proj.points)
        scores[method] = {"trustworthiness": trust, "knn_accuracy": knn}
    return EmbeddingSnapshot(layer, feats, labels, preds, knn, projections, scores)


def embedding_payload(
    snapshot: EmbeddingSnapshot,
    method: str,
    class_names: Sequence[str],
    indices: np.ndarray | None = None,
    sprite: dict | None = None,
    projector: dict | None = None,
) -> dict:
    """The cnnvis tab's record of one layout (`json/embedding/<method>`, docs/log-format.md).

    Args:
        snapshot: a finite `EmbeddingSnapshot`.
        method: one of its projections.
        class_names: one name per class.
        indices: the images' indices in the user's data. Defaults to None (`0..n-1`).
        sprite: the sprite geometry `{"tag", "single_image_dim", "per_row"}`. Defaults
            to None.
        projector: `{"tensor_name": ...}` of the Projector entry. Defaults to None.

    Returns:
        A dict of numbers, lists and small numpy arrays.
    """
    proj = snapshot.projections[method]
    rows = proj.indices
    indices = rows if indices is None else np.asarray(indices)[rows]
    payload = {
        "method": method,
        "layer": snapshot.layer,
        "points": [[float(f"{a:.5g}"), float(f"{b:.5g}")] for a, b in proj.points],
        "labels": snapshot.labels[rows],
        "predictions": snapshot.predictions[rows],
        "class_names": list(class_names),
        "sprite": sprite,
        "scores": snapshot.scores[method],
        "indices": indices,
        "n_features": int(snapshot.features.shape[1]),
        "aligned": proj.aligned,
        "projector": projector,
    }
    if method == "pca":
        payload["explained_variance_ratio"] = [
            round(float(v), 5) for v in proj.explained_variance_ratio
        ]
    return payload


def embedding_classes(
    labels: np.ndarray, outputs: Any = None, class_names: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The names of the classes an embedding is coloured by, and those without any image.

    Without `class_names` there are as many classes as the labels and the model's outputs
    (`inputs.n_classes_of`) show, named `"class i"`.

    Args:
        labels: int `(n,)` the images' classes.
        outputs: the model's outputs for a few images. Defaults to None.
        class_names: one name per class. Defaults to None.

    Returns:
        `(names, missing)`: a name per class, and the names of classes no label has.

    Raises:
        ValueError: if a label has no name in `class_names`.
    """
    labels = np.asarray(labels)
    top = int(labels.max()) if labels.size else -1
    if class_names is not None:
        names = [str(c) for c in class_names]
        if top >= len(names):
            raise ValueError(
                f"Label {top} has no name: class_names has {len(names)} entries. Pass one "
                "name per class."
            )
    else:
        n_classes = max(top + 1, inputs.n_classes_of(outputs))
        names = [f"class {i}" for i in range(n_classes)]
    missing = [names[c] for c in range(len(names)) if not np.any(labels == c)]
    return names, missing
