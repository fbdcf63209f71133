"""EmbeddingCallback: PCA/t-SNE layouts of learned features per epoch, scores, a t-SNE image
grid, and Embedding Projector data (tensor, metadata, sprite) for TensorBoard's Projector tab.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Sequence

import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.features import projector
from keras_cnnvis.features.embeddings import LayerFeatures, check_spatial, flatten_features
from keras_cnnvis.features.projection import MIN_POINTS
from keras_cnnvis.features.snapshot import (
    check_methods,
    embedding_classes,
    embedding_payload,
    snapshot_of_features,
)
from keras_cnnvis.model import output_activation
from keras_cnnvis.rendering import embedding as render


def balanced_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `n` examples, drawn round-robin over classes (seeded).

    Every class gets `n // n_classes` examples when it has them; the rest goes to classes
    that have more. With `len(labels) <= n` all indices are returned.
    """
    return inputs.balanced_indices(labels, n, seed=seed)


class EmbeddingCallback(MonitorCallback):
    """Logs how a layer's feature space organises the data: PCA and t-SNE per epoch.

    On a fixed, class-balanced subset of the given (validation) images, every N epochs:
    extracts the features (default: the input of the last Dense layer), projects them with
    each method and writes, into `<log_dir>/cnnvis`:

    - `json/embedding/<method>`: the 2-D points, labels, predictions, class names, sprite
      geometry and scores, for the cnnvis tab (see docs/log-format.md);
    - images `embedding/<method>` (scatter coloured by class, misclassified points ringed;
      PCA with its principal axes as arrows and the explained variance),
      `embedding/tsne_grid` (the images snapped to a grid by their t-SNE layout) and
      `embedding/sprite` (the thumbnails, row-major, `per_row` per row);
    - scalars `embedding/knn_accuracy` (leave-one-out k-NN accuracy in feature space) and
      `embedding/<method>/trustworthiness` (of each layout);
    - Embedding Projector data (feature .tsv, metadata .tsv with label, prediction and
      correct, the sprite, `projector_config.pbtxt`; paths relative to the run) with one
      entry `<name>_epoch_<step>` per logged step, so the stock Projector tab shows run
      "cnnvis".

    t-SNE starts from the previous logged layout of the same points (a warm start, then a
    rotation/reflection onto it), so clusters keep their places across epochs. Features
    with NaN/inf (a diverged model) skip the step with a warning; training continues.

    Example:

    ```python
    cb = EmbeddingCallback("runs/exp1", data=(x_val, y_val), class_names=names)
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        data: `(images, labels)`: images `(N, H, W, C)` and integer or one-hot labels.
        layer: the layer whose output is embedded. Defaults to None (the input of the
            last Dense layer).
        methods: any of `"pca"`, `"tsne"`. Defaults to `("pca", "tsne")`.
        n_images: images in the fixed subset (balanced over classes). Defaults to 500.
        class_names: names of the classes. Defaults to None (`"class i"`).
        max_points: the most points any projection runs on (the subset is cut to it).
            Defaults to 1000.
        perplexity: t-SNE perplexity. Defaults to 30.0.
        tsne_iter: t-SNE iterations of the first layout (later ones start from the
            previous layout and run 250). Defaults to 500.
        knn_k: neighbours of the k-NN accuracy. Defaults to 5.
        spatial: how spatial layer outputs become vectors (`"avg"`, `"max"`,
            `"flatten"`; a warning says so). Defaults to `"avg"`.
        projector: write Embedding Projector data. Defaults to True.
        tsne_grid: log the t-SNE image grid. Defaults to True.
        sprite_size: the longest thumbnail side in the sprite, in pixels. Defaults to 24.
        projector_name: the Projector tensor name prefix. Defaults to None (the layer's
            path, e.g. `"features"` -> `features_epoch_003`).
        seed: seed of the subset and of t-SNE. Defaults to 0.
        every_n_epochs: log after every N-th epoch (and after the last one); 0 turns it
            off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: in the constructor for an unknown method or spatial mode, data that
            is not `(images, labels)` of equal length, NaN/inf images, or fewer than 4
            images; at `on_train_begin` for an unknown layer, a model without a Dense
            layer and no `layer`, images the model cannot take, or labels beyond
            `class_names`. Fewer images than classes is a warning.
    """

    def __init__(
        self,
        log_dir: str,
        data: tuple,
        layer: Any = None,
        methods: Sequence[str] = ("pca", "tsne"),
        n_images: int = 500,
        class_names: Sequence[str] | None = None,
        max_points: int = 1000,
        perplexity: float = 30.0,
        tsne_iter: int = 500,
        knn_k: int = 5,
        spatial: str = "avg",
        projector: bool = True,
        tsne_grid: bool = True,
        sprite_size: int = 24,
        projector_name: str | None = None,
        seed: int = 0,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        methods = check_methods(methods)
        check_spatial(spatial)
        if int(max_points) < MIN_POINTS or int(n_images) < MIN_POINTS:
            raise ValueError(
                f"n_images and max_points must be at least {MIN_POINTS}; got {n_images} "
                f"and {max_points}."
            )
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError(
                "data must be (images, labels), e.g. data=(x_val, y_val); the labels colour "
                "the embedding and give the k-NN accuracy."
            )
        x = inputs.check_images(data[0], None, "embedding images", finite=False)
        y = inputs.class_labels(data[1], len(x))
        if len(x) < MIN_POINTS:
            raise ValueError(
                f"EmbeddingCallback needs at least {MIN_POINTS} images to embed; got "
                f"{len(x)}. Pass more validation images."
            )
        self.indices = balanced_subset(y, min(int(n_images), int(max_points)), seed)
        self.images = x[self.indices]
        if not np.isfinite(self.images).all():
            raise ValueError(
                "The embedding images contain NaN or infinite values; clean the data passed "
                "to EmbeddingCallback."
            )
        self.labels = y[self.indices]
        self.layer = layer
        self.methods = methods
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.max_points = int(max_points)
        self.perplexity = float(perplexity)
        self.tsne_iter = int(tsne_iter)
        self.knn_k = int(knn_k)
        self.spatial = spatial
        self.projector = bool(projector)
        self.tsne_grid = bool(tsne_grid)
        self.sprite_size = int(sprite_size)
        self.projector_name = projector_name
        self.seed = int(seed)
        self._layouts: dict[str, np.ndarray] = {}
        self._sprite: projector.Sprite | None = None
        self._extract = None
        self._names: list[str] = []
        self._tensor_prefix = "features"

    log_at_end = True  # the trained state is the most telling layout: always log it

    # -- set-up ---------------------------------------------------------------------------
    def setup(self) -> None:
        inputs.check_image_shape(self.images, self.model, "embedding images")
        self._activation = output_activation(self.model).name
        self._extract = LayerFeatures(self.model, self.layer)
        raw, outputs = self._extract.probe(self.images[:2])
        flatten_features(raw, self.spatial, f"Layer '{self._extract.label}'", warn=True)
        self._names, missing = embedding_classes(self.labels, outputs, self.class_names)
        n_classes = len(self._names)
        if len(self.labels) < n_classes or missing:
            fewer = (
                f"only {len(self.labels)} images for {n_classes} classes; "
                if len(self.labels) < n_classes
                else ""
            )
            warnings.warn(
                f"EmbeddingCallback: {fewer}classes without any image in the embedding: "
                f"{missing}. Their clusters cannot show and the k-NN accuracy ignores them; "
                "pass at least a few images per class.",
                UserWarning,
                stacklevel=2,
            )
        prefix = self.projector_name or self._extract.label.replace(" (input)", "_input")
        self._tensor_prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix)
        if self._sprite is None:
            self._sprite = projector.make_sprite(self.images, self.sprite_size)

    # -- one record set ---------------------------------------------------------------------
    def log(self, step: int, logs: dict | None = None):
        # The model's part (one pass for features and outputs) runs here; projections,
        # pictures and Projector files run after it, on the background worker.
        shared = self._shared_for("data") if self.layer is None else None
        if shared is not None and shared.has_features:  # the pass shared with other monitors
            raw, outputs = shared.features(self.shared_rows["data"][self.indices])
        else:
            raw, outputs = self._extract(self.images, outputs=True)
        return lambda: self._record(step, raw, outputs)

    def _record(self, step: int, raw: np.ndarray, outputs: np.ndarray) -> None:
        snap = snapshot_of_features(
            self._extract.label,
            raw,
            outputs,
            self.labels,
            self.methods,
            previous=self._layouts,
            spatial=self.spatial,
            max_points=self.max_points,
            perplexity=self.perplexity,
            tsne_iter=self.tsne_iter,
            knn_k=self.knn_k,
            seed=self.seed,
            activation=self._activation,
        )
        if snap.nonfinite:
            warnings.warn(
                f"EmbeddingCallback: the features of {snap.nonfinite} of {len(snap.features)} "
                f"images are NaN or infinite at step {step} (the model may have diverged); "
                "nothing is logged for this step and training continues.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self._layouts.update(snap.layouts)
        self.writer.scalar("embedding/knn_accuracy", snap.knn_accuracy, step)
        sprite = self._sprite
        geometry = {
            "tag": "embedding/sprite",
            "single_image_dim": list(sprite.single_image_dim),
            "per_row": sprite.per_row,
        }
        entry = {"tensor_name": self._tensor_name(step)} if self.projector else None
        for method, proj in snap.projections.items():
            scores = snap.scores[method]
            self.writer.scalar(
                f"embedding/{method}/trustworthiness", scores["trustworthiness"], step
            )
            title = f"{render.METHOD_TITLES[method]} of '{snap.layer}', epoch {step}"
            self.writer.images(
                f"embedding/{method}",
                render.scatter_image(
                    proj, snap.labels, snap.predictions, self._names, title, scores
                ),
                step,
            )
            payload = embedding_payload(snap, method, self._names, self.indices, geometry, entry)
            self.writer.json(f"json/embedding/{method}", payload, step, kind="embedding")
            if method == "tsne" and self.tsne_grid:
                rows = proj.indices
                grid, _ = render.grid_image(
                    self.images[rows], proj.points, labels=snap.labels[rows]
                )
                self.writer.images("embedding/tsne_grid", grid, step)
        self.writer.images("embedding/sprite", sprite.image, step)
        if self.projector:
            metadata = projector.class_metadata(
                self.indices, snap.labels, snap.predictions, self._names
            )
            projector.write_embedding(
                self.run_dir, self._tensor_name(step), snap.features, metadata, sprite
            )

    def _tensor_name(self, step: int) -> str:
        return f"{self._tensor_prefix}_epoch_{step:03d}"
