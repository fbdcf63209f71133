"""MaxActivatingPatchesCallback: logs, every few epochs, the dataset patches that excite chosen
channels most (rows = channels, columns = top-k), so you can watch units specialise.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Sequence

import numpy as np

from keras_cnnvis import image
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.model import find_layers, input_shape
from keras_cnnvis.inputs import check_image_shape, data_length, image_batches
from keras_cnnvis.patches import (
    VIEWS,
    MaxPatches,
    PatchMiner,
    unit_views,
)
from keras_cnnvis.model.receptive_field import receptive_field


def display_range(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] for display with one scale for the whole array, so tiles stay
    comparable (see `image.display_images`)."""
    return image.display_images(x, per_image=False)


def patch_grid(
    result: MaxPatches,
    views: np.ndarray | None = None,
    pad: int = 1,
    target_tile: int = 48,
    unseen: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Renders max-activating patches as one grid: a row per channel, a column per rank.

    With `views` (e.g. guided backprop of the unit on each patch, same shape as the
    patches), each patch is followed by its view, so a row holds `2k` tiles.

    Example:

    ```python
    grid, geometry = patch_grid(max_activating_patches(model, "conv2", x_val, k=8))
    image.save_png("conv2_patches.png", grid)
    ```

    Args:
        result: the output of `max_activating_patches`.
        views: optional float `(n_channels, k, h, w, C)` maps in [0, 1] shown beside the
            patches. Defaults to None.
        pad: pixels between tiles. Defaults to 1.
        target_tile: small patches are enlarged by an integer factor to about this many
            pixels. Defaults to 48.
        unseen: display value (0..1) of the pixels the unit does not see, whatever the
            data's range. Defaults to None (the patches' own fill, scaled with the data).

    Returns:
        `(grid, geometry)`: a float32 `(H, W, C)` image in [0, 1] and the grid geometry
        `{"rows", "cols", "tile": [h, w], "pad", "scale"}` of the log format.
    """
    patches = display_range(result.patches)
    n_ch, k = patches.shape[:2]
    if unseen is not None:
        patches = np.where(_seen(result)[..., None], patches, np.float32(unseen))
    if views is not None:
        views = np.asarray(views, np.float32)
        if views.shape[-1] != patches.shape[-1]:
            views = np.broadcast_to(views[..., :1], patches.shape)
        patches = np.stack([patches, views], axis=2).reshape((n_ch, 2 * k) + patches.shape[2:])
    cols = patches.shape[1]
    th, tw = patches.shape[2:4]
    scale = image.auto_scale(max(th, tw), target=target_tile)
    tiles = patches.reshape((-1,) + patches.shape[2:])
    grid = image.tile_grid(tiles, cols=cols, pad=pad, scale=scale)
    geometry = {
        "rows": n_ch,
        "cols": cols,
        "tile": [th * scale, tw * scale],
        "pad": pad,
        "scale": 1,
    }
    return grid, geometry


def _seen(result: MaxPatches) -> np.ndarray:
    """bool `(n_channels, k, size_h, size_w)`: the window pixels each peak unit sees."""
    rf = result.receptive_field
    seen = np.zeros(result.patches.shape[:4], bool)
    for c, j in np.ndindex(*result.positions.shape[:2]):
        top = rf.start[0] + result.positions[c, j, 0] * rf.jump[0]
        left = rf.start[1] + result.positions[c, j, 1] * rf.jump[1]
        t, l, b, r = (int(v) for v in result.boxes[c, j])
        if b > t and r > l:
            seen[c, j, t - top : b - top, l - left : r - left] = True
    return seen


class MaxActivatingPatchesCallback(MonitorCallback):
    """Logs the dataset patches that activate chosen channels most, every few epochs.

    At each record the data is streamed once through the model truncated after the
    deepest chosen layer, keeping per channel the k images with the highest spatial
    maximum and cropping the receptive field of the peak unit (see
    `max_activating_patches`). Writes the image `patches/<layer>` (rows = channels,
    columns = the top-k patches, best first; pixels the unit cannot see are grey) and the
    record `json/patches/<layer>` (values, image indices, peak positions, boxes, receptive
    field, grid geometry) into `<log_dir>/cnnvis`. With `view="guided_backprop"` (or
    `"deconvnet"`) each patch is followed by that method's view of the unit on the patch:
    which of its pixels the unit responds to (Springenberg et al. 2015; Zeiler & Fergus
    2014; see `unit_views`).

    Example:

    ```python
    cb = MaxActivatingPatchesCallback("runs/exp1", x_val, layers=["conv2", "conv4"])
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        data: images to mine: a numpy array `(N, H, W, C)`, `(x, y)`, a
            `tf.data.Dataset` or a `PyDataset` (re-iterable; a one-shot generator cannot
            be read at every record).
        layers: layers with spatial output. Defaults to None (every convolution layer).
        channels: an int n (the first n channels of each layer) or a list of channel
            indices used for every layer. Defaults to 8.
        k: patches per channel. Defaults to 9.
        batch_size: batch size for arrays and unbatched datasets. Defaults to 64.
        view: `"guided_backprop"` or `"deconvnet"` to show that view of the unit beside
            each patch (the model needs ReLUs the method can override), or None.
            Defaults to None.
        pad_value: display value of the pixels a unit does not see. Defaults to 0.5.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for a one-shot iterator, `k < 1`, bad `channels` or
            an unknown `view`;
            at `on_train_begin` (before any epoch) for images of the wrong shape, `k`
            larger than the data, unknown layers, layers without spatial output or
            channel indices out of range, or (with a view) a model without overridable
            ReLUs.
    """

    PAD = 1

    def __init__(
        self,
        log_dir: str,
        data: Any,
        layers: Sequence[Any] | str | None = None,
        channels: int | Sequence[int] | None = 8,
        k: int = 9,
        batch_size: int = 64,
        view: str | None = None,
        pad_value: float = 0.5,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        if data is None:
            raise ValueError(
                "MaxActivatingPatchesCallback needs data to mine: pass data=<images>, e.g. "
                "the validation images."
            )
        if isinstance(data, collections.abc.Iterator):
            raise ValueError(
                "data is a one-shot iterator (e.g. a generator) and cannot be read again at "
                "every record; pass a numpy array, a tf.data.Dataset or a PyDataset."
            )
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}.")
        if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool):
            if channels < 1:
                raise ValueError(f"channels must be >= 1 (or a list of indices); got {channels}.")
        elif channels is not None:
            channels = [int(c) for c in channels]
        self.data = data
        self.layers = layers
        self.channels = channels
        self.k = int(k)
        self.batch_size = int(batch_size)
        if view is not None and view not in VIEWS:
            raise ValueError(f"view must be None or one of {VIEWS}; got {view!r}.")
        self.view = view
        self.pad_value = float(pad_value)
        self._miner: PatchMiner | None = None

    def setup(self) -> None:
        first = next(image_batches(self.data, self.batch_size), None)
        if first is None:
            raise ValueError("MaxActivatingPatchesCallback: data holds no images.")
        shape = input_shape(self.model)
        if shape is not None and all(v is not None for v in shape):
            check_image_shape(first, self.model, "data images", shape)
        else:
            shape = first.shape[1:]
        infos = find_layers(self.model, self.layers)
        if isinstance(self.channels, int):
            per_layer = [
                list(
                    range(
                        min(
                            self.channels,
                            receptive_field(self.model, i.layer, shape).output_shape[-1],
                        )
                    )
                )
                for i in infos
            ]
        else:
            per_layer = [self.channels] * len(infos)
        n = data_length(self.data)
        if n is not None and self.k > n:
            raise ValueError(
                f"k={self.k} is larger than the {n} images in data; pass k <= {n} or more images."
            )
        self._miner = PatchMiner(
            self.model, [i.layer for i in infos], per_layer, self.k, self.pad_value, shape
        )
        if self.view is not None:
            # One small mining pass now: a model whose ReLUs cannot be overridden fails here.
            probe = PatchMiner(self.model, infos[0].layer, [[0]], 1, self.pad_value, shape)
            probe.update(first[:1])
            unit_views(self.model, probe.results()[0], self.view)

    def log(self, step: int, logs: dict | None = None) -> None:
        miner = self._miner
        miner.reset()
        for batch in image_batches(self.data, self.batch_size):
            miner.update(batch)
        for result in miner.results():
            views = None
            if self.view is not None:
                views = unit_views(self.model, result, self.view, self.batch_size)
            grid, geometry = patch_grid(result, views, pad=self.PAD, unseen=self.pad_value)
            self.writer.images(f"patches/{result.layer}", grid, step)
            self.writer.json(
                f"json/patches/{result.layer}",
                {
                    "layer": result.layer,
                    "k": self.k,
                    "channels": result.channels,
                    "values": result.values,
                    "indices": result.indices,
                    "positions": result.positions,
                    "boxes": result.boxes,
                    "n_images": result.n_images,
                    "receptive_field": result.receptive_field.as_dict(),
                    "view": self.view,
                    "grid": geometry,
                },
                step,
                kind="patches",
            )
