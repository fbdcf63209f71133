"""NetworkCallback: logs what every layer computes for a few probe images, for the Network page
(CNN Explainer for any Keras model, at every logged epoch). The core is `keras_cnnvis.network`,
the thumbnails come from `keras_cnnvis.rendering.network`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback, require_probe
from keras_cnnvis.inputs import check_images
from keras_cnnvis.model import output_activation
from keras_cnnvis.network.records import (
    MODES,
    layer_payload,
    network_snapshot,
    overview_payload,
)
from keras_cnnvis.network.trace import NetworkTracer
from keras_cnnvis.rendering.image import display_images
from keras_cnnvis.rendering.network import network_atlas

ATLAS_TAG = "network/atlas"
INPUT_TAG = "network/input"
OVERVIEW_TAG = "json/network/overview"
LAYER_TAG = "json/network/layer/"


def write_network(
    writer,
    tracer: NetworkTracer,
    images: np.ndarray,
    step: int,
    mode: str = "auto",
    max_channels: int = 8,
    top: int = 8,
    thumbnail: int = 32,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Writes one step of Network records for `images` (see docs/log-format.md, Network).

    Records: `network/input` (the probes), `network/atlas` (one thumbnail atlas per probe),
    `json/network/overview` and one `json/network/layer/<path>` per record of the trace.

    Example:

    ```python
    write_network(LogWriter("runs/x/cnnvis"), NetworkTracer(model), x_val[:2], step=0)
    ```

    Args:
        writer: a `keras_cnnvis.summary.LogWriter`.
        tracer: the model's `NetworkTracer`.
        images: probe images `(N, H, W, C)` as the model takes them.
        step: the step.
        mode: `"auto"`, `"full"` or `"units"` (see `network_snapshot`). Defaults to `"auto"`.
        max_channels: channels shown per layer in units mode. Defaults to 8.
        top: terms kept per unit breakdown. Defaults to 8.
        thumbnail: the longest side of a thumbnail in pixels. Defaults to 32.
        class_names: names of the classes. Defaults to None.

    Returns:
        The overview payload written.
    """
    activation = output_activation(tracer.model).name
    snap = network_snapshot(tracer, images, mode, max_channels, top, activation=activation)
    maps = []
    for k, record in enumerate(snap.records):
        if record.output.ndim == 3:
            shown = snap.shown[record.path]
            maps.append(np.stack([t[k].output[..., shown] for t in snap.traces]))
        else:
            maps.append(None)
    atlases, blocks, scales = network_atlas(maps, size=thumbnail)
    overview = overview_payload(tracer, snap, blocks, scales, class_names)
    overview["atlas"] = {"tag": ATLAS_TAG, "size": list(atlases.shape[1:3])}
    overview["input"] = INPUT_TAG
    writer.images(INPUT_TAG, display_images(images), step)
    writer.images(ATLAS_TAG, atlases, step)
    writer.json(OVERVIEW_TAG, overview, step, kind="network")
    for k, record in enumerate(snap.records):
        writer.json(LAYER_TAG + record.path, layer_payload(snap, k), step, kind="network")
    return overview


class NetworkCallback(MonitorCallback):
    """Logs every layer's output for a few probe images, for the Network page.

    Each logged epoch, the probes go through the model in one compiled pass that records
    every layer (through nested models and branches). Small models (the demo) are logged
    in full: every channel of every layer, the weights, so the page can open any unit at
    any position. Larger models (more than `full_limit` values) get a bounded selection:
    the `max_channels` most active channels per layer as thumbnails, and for each the
    breakdown of its peak unit (input windows of the `top` most contributing input
    channels, kernel slices, the rest summed, bias, activation). The class probabilities
    of each probe are logged too.

    Example:

    ```python
    cb = NetworkCallback("runs/exp1", probe=x_val[:2], class_names=names)
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        probe: probe images `(N, H, W, C)` preprocessed as the model expects (two or three:
            every record holds every probe).
        mode: `"auto"`, `"full"` or `"units"`. Defaults to `"auto"`.
        max_channels: channels shown per layer in units mode. Defaults to 8.
        top: input terms kept per unit breakdown (the rest summed). Defaults to 8.
        thumbnail: the longest side of a channel thumbnail in pixels. Defaults to 32.
        class_names: class names for the probabilities. Defaults to None.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for missing probes, an unknown mode or counts below 1;
            at `on_train_begin` for probes that do not fit the model.
    """

    def __init__(
        self,
        log_dir: str,
        probe: np.ndarray,
        mode: str = "auto",
        max_channels: int = 8,
        top: int = 8,
        thumbnail: int = 32,
        class_names: Sequence[str] | None = None,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        require_probe(probe, "NetworkCallback", "two validation images")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
        for name, value in (("max_channels", max_channels), ("top", top), ("thumbnail", thumbnail)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        self.probe = probe
        self.mode = mode
        self.max_channels = int(max_channels)
        self.top = int(top)
        self.thumbnail = int(thumbnail)
        self.class_names = list(class_names) if class_names is not None else None
        self._images: np.ndarray | None = None
        self._tracer: NetworkTracer | None = None

    def setup(self) -> None:
        self._images = check_images(self.probe, self.model, "probe images")
        self._tracer = NetworkTracer(self.model, self._images.shape[1:])

    def log(self, step: int, logs: dict | None = None) -> None:
        write_network(
            self.writer,
            self._tracer,
            self._images,
            step,
            mode=self.mode,
            max_channels=self.max_channels,
            top=self.top,
            thumbnail=self.thumbnail,
            class_names=self.class_names,
        )
