"""NearestNeighborsCallback: logs query images with their nearest neighbours in feature and in
pixel space, and the kNN accuracy of both spaces, so you can watch meaning replace pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.features.embeddings import flatten_features
from keras_cnnvis.features.knn import check_metric, nearest, vote_accuracy
from keras_cnnvis.features.neighbors import FeatureFunction, pixel_vectors
from keras_cnnvis.rendering.neighbors import OTHER, QUERY, SAME, neighbor_grid  # noqa: F401


def pick_queries(labels: np.ndarray, n: int) -> np.ndarray:
    """Up to `n` example indices, taking classes in turn (first examples of each class
    first), so every class is shown when `n` allows (`inputs.balanced_indices`)."""
    return inputs.balanced_indices(labels, n, class_order="first_seen", sort=False)


def _pair(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            f"{name} must be a pair (images, labels) of numpy arrays; got {type(data).__name__}."
        )
    x = inputs.check_images(data[0], None, f"{name} images")
    return x, inputs.class_labels(data[1], len(x))


class NearestNeighborsCallback(MonitorCallback):
    """Logs query images beside their nearest neighbours in feature and in pixel space,
    with the kNN accuracy of each space, every few epochs.

    Feature space is the network's representation (default: the input of the last Dense
    layer, the penultimate layer; or the flattened output of `layer`), pixel space the
    flattened images. Writes the images `neighbors/feature` and `neighbors/pixel` (a row
    per shown query: the query framed blue, then its k neighbours, nearest first, framed
    green for the query's class and red otherwise) and the scalars
    `neighbors/knn_accuracy_feature` and `neighbors/knn_accuracy_pixel` (accuracy of a
    k-nearest-neighbour vote over all queries) into `<log_dir>/cnnvis`. Pixel space does
    not change during training; it is computed once and logged at every record as the
    baseline.

    Example:

    ```python
    cb = NearestNeighborsCallback("runs/exp1", (x_train[:2000], y_train[:2000]), (x_val, y_val))
    model.fit(x_train, y_train, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        reference_data: `(images, labels)` searched for neighbours (e.g. training images).
        query_data: `(images, labels)` of the queries (e.g. validation images).
        layer: the feature layer, or None for the penultimate representation.
            Defaults to None.
        k: neighbours shown and voting. Defaults to 5.
        metric: `"cosine"` (1 - cosine similarity) or `"euclidean"`. Defaults to
            `"cosine"`.
        n_show: queries shown in the grids (classes taken in turn). Defaults to 6.
        batch_size: images per compiled call. Defaults to 64.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for data that is not `(images, labels)`, labels not
            one per image, an unknown metric or `k`/`n_show` < 1; at `on_train_begin`
            (before any epoch) for images that do not fit the model, `k` larger than the
            reference data, an unknown layer, or a model without a Dense layer and no
            `layer`.
    """

    PAD = 1

    def __init__(
        self,
        log_dir: str,
        reference_data: Any,
        query_data: Any,
        layer: Any = None,
        k: int = 5,
        metric: str = "cosine",
        n_show: int = 6,
        batch_size: int = 64,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        self.x_ref, self.y_ref = _pair(reference_data, "reference_data")
        self.x_query, self.y_query = _pair(query_data, "query_data")
        check_metric(metric)
        if int(k) < 1 or int(n_show) < 1:
            raise ValueError(f"k and n_show must be >= 1; got k={k}, n_show={n_show}.")
        self.layer = layer
        self.k = int(k)
        self.metric = metric
        self.n_show = int(n_show)
        self.batch_size = int(batch_size)
        self._embed: FeatureFunction | None = None
        self._pixel: tuple | None = None
        self._shown = pick_queries(self.y_query, self.n_show)

    def setup(self) -> None:
        inputs.check_image_shape(self.x_ref, self.model, "reference_data images")
        inputs.check_image_shape(self.x_query, self.model, "query_data images")
        if self.k > len(self.x_ref):
            raise ValueError(
                f"k={self.k} is larger than the {len(self.x_ref)} reference images; pass "
                "a smaller k or more reference data."
            )
        self._embed = FeatureFunction(self.model, self.layer, self.batch_size)
        self._embed.probe(self.x_query[:1])  # a wrong layer fails now (eager: no trace)
        if self._pixel is None:
            idx, _ = nearest(
                pixel_vectors(self.x_query), pixel_vectors(self.x_ref), self.k, self.metric
            )
            self._pixel = (idx, vote_accuracy(idx, self.y_ref, self.y_query))

    def log(self, step: int, logs: dict | None = None):
        shared = self._shared_for("query", "reference") if self.layer is None else None
        if shared is not None and shared.has_features:  # the pass shared with other monitors
            queries, references = (
                flatten_features(shared.features(self.shared_rows[role])[0], "flatten", warn=False)
                for role in ("query", "reference")
            )
        else:
            queries, references = self._embed(self.x_query), self._embed(self.x_ref)
        return lambda: self._record(step, queries, references)  # search and grids: background

    def _record(self, step: int, queries: np.ndarray, references: np.ndarray) -> None:
        idx, _ = nearest(queries, references, self.k, self.metric)
        results = {"feature": (idx, vote_accuracy(idx, self.y_ref, self.y_query))}
        results["pixel"] = self._pixel
        for space, (indices, accuracy) in results.items():
            shown = self._shown
            grid, _ = neighbor_grid(
                self.x_query[shown],
                self.y_query[shown],
                self.x_ref,
                self.y_ref,
                indices[shown],
                pad=self.PAD,
            )
            self.writer.images(f"neighbors/{space}", grid, step)
            self.writer.scalar(f"neighbors/knn_accuracy_{space}", accuracy, step)
