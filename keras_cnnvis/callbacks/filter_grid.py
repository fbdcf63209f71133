"""FilterGridCallback: logs the filters of weight layers (convolutions of every kind, Dense
layers on the flattened image) as image grids over training.
"""

from __future__ import annotations

from typing import Any, Sequence

from keras_cnnvis.callbacks.base import MonitorCallback, check_image_input
from keras_cnnvis.rendering.filters import filter_tiles_grid
from keras_cnnvis.weights.filters import check_normalize, filter_tiles
from keras_cnnvis.weights.kernels import tileable_layers


class FilterGridCallback(MonitorCallback):
    """Logs the filters of weight layers as image grids, so you can watch filters form.

    A first layer with 3 input channels shows each filter as an RGB tile (noise at
    initialisation; edges and colour blobs once trained); deeper layers show a grayscale
    tile per (filter, input channel) for a few input channels; depthwise kernels
    (DepthwiseConv2D, the depthwise part of SeparableConv2D) one grayscale tile per (input
    channel, multiplier); a Dense layer that sees the flattened image one image-sized tile
    per unit. Zero weights are mid-grey.
    Writes the image `filters/<layer>` and the record `json/filters/<layer>` (grid
    geometry for the cnnvis tab) into `<log_dir>/cnnvis`.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[FilterGridCallback("runs/exp1")])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        layers: weight layers to show (names, paths or objects). Defaults to None
            (every 2-D convolution layer and every Dense layer that sees the flattened
            image, nested models included).
        channels: input channels shown for layers without 3 input channels: a list of
            indices or an int k for the first k. Defaults to None (the first 4).
        max_filters: at most this many filters per layer. Defaults to 64.
        normalize: `"filter"` (each filter by its own scale) or `"layer"` (one scale
            per layer, magnitudes comparable). Defaults to `"filter"`.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log the initial weights. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at `on_train_begin` for an unknown layer (the message lists the
            convolution layers), a layer without a kernel, a Dense layer that does not
            see the image, a model without any such layer, or channel indices out of
            range.
    """

    PAD = 1

    def __init__(
        self,
        log_dir: str,
        layers: Sequence[Any] | str | None = None,
        channels: Sequence[int] | int | None = None,
        max_filters: int = 64,
        normalize: str = "filter",
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        self.layers = layers
        self.channels = channels
        self.max_filters = max_filters
        self.normalize = check_normalize(normalize)
        self._infos = []

    def setup(self) -> None:
        check_image_input(self.model, "FilterGridCallback")
        self._infos = tileable_layers(self.model, self.layers)
        for info in self._infos:
            # Validate the channel choice now rather than at the first epoch.
            filter_tiles(self.model, info.layer, self.channels, 1, self.normalize)

    def log(self, step: int, logs: dict | None = None) -> None:
        for info in self._infos:
            tiles = filter_tiles(
                self.model, info.layer, self.channels, self.max_filters, self.normalize
            )
            grid, geometry = filter_tiles_grid(tiles, self.PAD)
            self.writer.images(f"filters/{info.path}", grid, step)
            self.writer.json(
                f"json/filters/{info.path}",
                {
                    "layer": info.path,
                    "layer_type": tiles.layer_type,
                    "n_filters": tiles.n_filters,
                    "shown_filters": len(tiles.filters),
                    "filters": tiles.filters,
                    "kernel_size": list(tiles.kernel_size),
                    "in_channels": tiles.in_channels,
                    "shown_channels": tiles.channels,
                    "mode": tiles.mode,
                    "depth_multiplier": tiles.depth_multiplier,
                    "normalize": self.normalize,
                    "grid": geometry,
                },
                step,
                kind="filters",
            )
