"""ActivationMapsCallback: logs the feature maps of chosen layers for a few fixed probe images,
so you can watch the maps sharpen over training. The maps come from `keras_cnnvis.activations`,
the grids from `keras_cnnvis.rendering.activations`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_cnnvis.activations import activation_maps, check_order, check_probe
from keras_cnnvis.callbacks.base import MonitorCallback, require_probe
from keras_cnnvis.model import FeatureExtractor, find_layers
from keras_cnnvis.rendering.activations import activation_grid, check_normalize, grid_geometry


class ActivationMapsCallback(MonitorCallback):
    """Logs a grid of each chosen layer's feature maps for every probe image.

    For each layer, writes the image record `activations/<layer>` (one grid per probe
    image, in probe order) and the record `json/activations/<layer>` (which channels are
    shown where) into `<log_dir>/cnnvis`. Channels are shown in index order or sorted by
    their mean activation over the probes (largest first; recomputed at every record).

    Example:

    ```python
    cb = ActivationMapsCallback("runs/exp1", probe=x_val[:4], order="mean")
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        probe: the probe images, a numpy array `(N, H, W, C)` preprocessed as the model
            expects (a few images: one grid each).
        layers: layers with 4-D outputs (names, paths or objects). Defaults to None
            (every 2-D convolution layer).
        order: `"index"` or `"mean"`. Defaults to `"index"`.
        max_channels: at most this many maps per layer. Defaults to 16.
        normalize: `"map"` (each map scaled to its own range) or `"layer"` (one range per
            probe image, so strengths compare). Defaults to `"map"`.
        cmap: a matplotlib colormap name for the maps, or None for grayscale.
            Defaults to None.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for a missing probe or an unknown `order`/`normalize`;
            at `on_train_begin` (before any epoch) for probe images whose shape or dtype do
            not fit the model input, unknown layers, or layers whose output is not a 4-D
            feature map.
    """

    PAD = 1

    def __init__(
        self,
        log_dir: str,
        probe: np.ndarray,
        layers: Sequence[Any] | str | None = None,
        order: str = "index",
        max_channels: int | None = 16,
        normalize: str = "map",
        cmap: str | None = None,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        require_probe(probe, "ActivationMapsCallback")
        check_order(order)
        check_normalize(normalize)
        if max_channels is not None and int(max_channels) < 1:
            raise ValueError(f"max_channels must be >= 1 or None; got {max_channels!r}.")
        self.probe = probe
        self.layers = layers
        self.order = order
        self.max_channels = max_channels
        self.normalize = normalize
        self.cmap = cmap
        self._images: np.ndarray | None = None
        self._extractor: FeatureExtractor | None = None

    def setup(self) -> None:
        self._images = check_probe(self.model, self.probe)
        infos = find_layers(self.model, self.layers)
        self._extractor = FeatureExtractor(self.model, [i.layer for i in infos])
        # One image through the model now: wrong layers fail before the first epoch.
        activation_maps(self.model, self._images[:1], extractor=self._extractor)

    def log(self, step: int, logs: dict | None = None) -> None:
        maps = activation_maps(
            self.model,
            self._images,
            order=self.order,
            max_channels=self.max_channels,
            extractor=self._extractor,
        )
        for path, m in maps.items():
            grids = activation_grid(m, self.normalize, pad=self.PAD, cmap=self.cmap)
            self.writer.images(f"activations/{path}", grids, step)
            self.writer.json(
                f"json/activations/{path}",
                {
                    "layer": path,
                    "n_channels": m.n_channels,
                    "order": m.order,
                    "channels": m.channels,
                    "mean": [float(m.mean[c]) for c in m.channels],
                    "map_size": list(m.maps.shape[1:3]),
                    "normalize": self.normalize,
                    "n_probes": int(len(self._images)),
                    "grid": grid_geometry(m, pad=self.PAD),
                },
                step,
                kind="activations",
            )
