"""MaxActivatingPatchesCallback: logs, every few epochs, the dataset patches that excite chosen
channels most (rows = channels, columns = top-k), so you can watch units specialise.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Sequence

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.inputs import check_image_shape, data_length, image_batches
from keras_cnnvis.model import find_layers, input_shape
from keras_cnnvis.patches import (
    VIEWS,
    PatchMiner,
    check_context,
    check_k,
    unit_views,
    window_band,
)
from keras_cnnvis.rendering.patches import display_range  # noqa: F401 (the 0.1 name)
from keras_cnnvis.rendering.patches import patch_grid, tile_view


class MaxActivatingPatchesCallback(MonitorCallback):
    """Logs the dataset patches that activate chosen channels most, every few epochs.

    At each record the data is streamed once through the model truncated after the
    deepest chosen layer, keeping per channel the k images with the highest spatial
    maximum and cropping the receptive field of the peak unit (see
    `max_activating_patches`). Writes the image `patches/<layer>` (rows = channels,
    columns = the top-k patches, best first; pixels the unit cannot see are grey) and the
    record `json/patches/<layer>` (values, image indices, peak positions, boxes, receptive
    field, grid geometry, tile view) into `<log_dir>/cnnvis`. A layer whose receptive
    field is small next to the image (a 3x3 or 5x5 first layer) is shown in context: each
    tile is the image region around the patch, enlarged, with the field framed (see
    `keras_cnnvis.patches.context_size` and `keras_cnnvis.rendering.patches.patch_grid`).
    With `view="guided_backprop"` (or `"deconvnet"`) each patch is followed by that
    method's view of the unit on the patch: which of its pixels the unit responds to
    (Springenberg et al. 2015; Zeiler & Fergus 2014; see `unit_views`).

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
        context: show patches in their image context: `"auto"` (layers whose field is
            small next to the image), True (every layer) or False (never). Defaults to
            `"auto"`.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for a one-shot iterator, `k < 1`, bad `channels`, an
            unknown `view` or `context`;
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
        context: bool | str = "auto",
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
        k = check_k(k)
        if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool):
            if channels < 1:
                raise ValueError(f"channels must be >= 1 (or a list of indices); got {channels}.")
        elif channels is not None:
            channels = [int(c) for c in channels]
        self.data = data
        self.layers = layers
        self.channels = channels
        self.k = k
        self.batch_size = int(batch_size)
        if view is not None and view not in VIEWS:
            raise ValueError(f"view must be None or one of {VIEWS}; got {view!r}.")
        self.view = view
        self.pad_value = float(pad_value)
        self.context = check_context(context)
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
        check_k(self.k, data_length(self.data), "data")
        # An int n: the first n channels of every layer; a list (or None): for every layer.
        channels = self.channels if isinstance(self.channels, int) else [self.channels] * len(infos)
        layers = [i.layer for i in infos]
        self._miner = PatchMiner(
            self.model, layers, channels, self.k, self.pad_value, shape, self.context
        )
        if self.view is not None:
            # One small mining pass now: a model whose ReLUs cannot be overridden fails here.
            probe = PatchMiner(self.model, infos[0].layer, [[0]], 1, self.pad_value, shape, False)
            probe.update(first[:1])
            unit_views(self.model, probe.results()[0], self.view)

    def log(self, step: int, logs: dict | None = None):
        miner = self._miner
        miner.reset()
        for batch in image_batches(self.data, self.batch_size):
            miner.update(batch)
        results = [
            (
                result,
                (
                    None
                    if self.view is None
                    else unit_views(self.model, result, self.view, self.batch_size)
                ),
            )
            for result in miner.results()
        ]
        return lambda: self._record(step, results)  # grids and records: the background worker

    def _record(self, step: int, results: list) -> None:
        for result, views in results:
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
                    "window": _window(result),
                    "view": self.view,
                    "grid": geometry,
                    **tile_view(result),
                },
                step,
                kind="patches",
            )


def _window(result) -> dict:
    """The part of each unit's field a patch tile shows (`window_band`): its offset in the
    field and its size, both `[rows, cols]`."""
    (lo_r, hi_r), (lo_c, hi_c) = window_band(result.receptive_field)
    return {"offset": [lo_r, lo_c], "size": [hi_r - lo_r, hi_c - lo_c]}
