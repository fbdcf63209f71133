"""Activation maps: the feature maps chosen layers produce for a few probe images, ordered by
channel index or by mean activation (float arrays only; grids in keras_cnnvis.rendering.activations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.model import FeatureExtractor, find_layers

# The grids were drawn here before rendering moved out; their names stay importable from here.
from keras_cnnvis.rendering.activations import (  # noqa: F401
    MAP_NORMALIZE,
    activation_grid,
    grid_geometry,
    scale_maps,
)

ORDERS = ("index", "mean")


@dataclass
class ActivationMaps:
    """The feature maps of one layer for a batch of images.

    Attributes:
        layer: the layer's path in the model.
        maps: float32 `(N, h, w, k)`: the shown channels' maps, in grid order.
        channels: the channel index of each shown map (grid order).
        n_channels: the layer's channel count.
        order: `"index"` or `"mean"`.
        mean: float32 `(n_channels,)`: each channel's mean activation over all images and
            positions (what `order="mean"` sorts by, descending).
    """

    layer: str
    maps: np.ndarray
    channels: list[int]
    n_channels: int
    order: str
    mean: np.ndarray


def check_probe(model: keras.Model, probe: Any, name: str = "probe") -> np.ndarray:
    """Validates probe images against the model's input and returns them as float32.

    A single image `(H, W, C)` is turned into a batch of one.

    Example:

    ```python
    probe = check_probe(model, x_val[:4])   # (4, 64, 64, 3) float32
    ```

    Args:
        model: the model the images are for.
        probe: images `(N, H, W, C)` (or one `(H, W, C)`), any real dtype.
        name: what to call the images in error messages. Defaults to `"probe"`.

    Returns:
        The images as a float32 `(N, H, W, C)` array.

    Raises:
        ValueError: for a non-numeric dtype, an empty batch, the wrong rank, a shape that
            does not match the model input, or NaN/inf values.
    """
    return inputs.check_images(probe, model, f"{name} images", single=True)


def check_order(order: str) -> None:
    """Raises ValueError unless `order` is one of `ORDERS`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}; got {order!r}.")


def select_channels(
    maps: np.ndarray, order: str = "index", max_channels: int | None = None
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Picks and orders the channels of `(N, h, w, C)` maps.

    Args:
        maps: the feature maps of one layer.
        order: `"index"` (channel 0, 1, ...) or `"mean"` (largest mean activation over all
            images and positions first; ties by index). Defaults to `"index"`.
        max_channels: keep at most this many. Defaults to None (all).

    Returns:
        `(selected maps, channel indices, per-channel means)`.
    """
    check_order(order)
    maps = np.asarray(maps, np.float32)
    n_channels = maps.shape[-1]
    mean = np.nan_to_num(maps.reshape(-1, n_channels).mean(axis=0), nan=-np.inf)
    idx = np.arange(n_channels) if order == "index" else np.argsort(-mean, kind="stable")
    if max_channels is not None:
        idx = idx[: max(1, int(max_channels))]
    return maps[..., idx], [int(i) for i in idx], maps.reshape(-1, n_channels).mean(axis=0)


def activation_maps(
    model: keras.Model,
    images: Any,
    layers: Any = None,
    order: str = "index",
    max_channels: int | None = None,
    batch_size: int = 64,
    extractor: FeatureExtractor | None = None,
) -> dict[str, ActivationMaps]:
    """The feature maps of chosen layers for a few images.

    Runs the live model once (weights shared, compiled and batched) and keeps each
    layer's output. Channels are shown in index order or by mean activation over all the
    images, so the grids of different images show the same channels at the same places.

    Example:

    ```python
    maps = activation_maps(model, x_val[:4], ["conv1", "conv3"], order="mean",
                           max_channels=16)
    maps["conv1"].maps.shape   # (4, 64, 64, 16)
    ```

    Args:
        model: a Keras model of any kind with one image input.
        images: images `(N, H, W, C)` preprocessed as the model expects.
        layers: layer references (names, paths, objects) with 4-D outputs
            `(batch, height, width, channels)`. Defaults to None (every 2-D convolution
            layer).
        order: `"index"` or `"mean"`. Defaults to `"index"`.
        max_channels: show at most this many channels per layer. Defaults to None (all).
        batch_size: images per compiled call. Defaults to 64.
        extractor: a `FeatureExtractor` for these layers to reuse (callbacks keep one).
            Defaults to None (a new one).

    Returns:
        A dict from layer path to `ActivationMaps`, in the order the layers were given.

    Raises:
        ValueError: for unknown layers, images of the wrong shape, an unknown `order`, or a
            layer whose output is not a 4-D feature map.
    """
    check_order(order)
    images = check_probe(model, images, "input")
    if extractor is None:
        extractor = FeatureExtractor(model, find_layers(model, layers), batch_size)
    feats, _ = extractor(images)
    out = {}
    for info, f in zip(extractor.infos, feats):
        if f.ndim != 4:
            raise ValueError(
                f"Layer '{info.path}' ({type(info.layer).__name__}) outputs shape "
                f"{(None,) + f.shape[1:]}; activation maps need a 4-D (batch, height, width, "
                "channels) output. Choose a convolution or pooling layer."
            )
        maps, channels, mean = select_channels(f, order, max_channels)
        out[info.path] = ActivationMaps(
            info.path, maps, channels, int(f.shape[-1]), order, mean.astype(np.float32)
        )
    return out
