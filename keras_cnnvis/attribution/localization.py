"""Localisation scores of attribution maps against object masks: the share of attribution
energy inside the mask and the pointing game (is the map's peak on the object?).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _maps_and_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    maps = np.abs(np.asarray(maps, np.float32))
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if maps.ndim != 3 or masks.ndim != 3 or len(maps) != len(masks):
        raise ValueError(
            f"Need maps (N, h, w) and masks (N, H, W) for the same N; got {maps.shape} "
            f"and {masks.shape}."
        )
    masks = masks > 0.5 if masks.dtype.kind == "f" else masks.astype(bool)
    if maps.shape[1:] != masks.shape[1:]:
        from keras_cnnvis.attribution._common import upsample

        maps = np.abs(upsample(maps, masks.shape[1:]))
    return maps, masks


def energy_in_mask(maps: Any, masks: Any) -> np.ndarray:
    """The share of each map's energy `sum |map|` that lies inside the object mask.

    A uniform map scores the mask's area fraction; a perfect one scores 1. Maps of another
    size are resized bilinearly to the masks first.

    Example:

    ```python
    share = energy_in_mask(grad_cam(model, x), masks).mean()
    ```

    Args:
        maps: `(N, h, w)` attribution maps (signed maps count by magnitude).
        masks: `(N, H, W)` boolean (or 0/1) object masks.

    Returns:
        float32 `(N,)` shares in [0, 1]; NaN for an all-zero map.

    Raises:
        ValueError: if the shapes do not pair up.
    """
    maps, masks = _maps_and_masks(maps, masks)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan).astype(
            np.float32
        )


def pointing_game(maps: Any, masks: Any, tolerance: int = 0) -> np.ndarray:
    """Whether each map's maximum falls on the object (Zhang et al. 2016).

    Example:

    ```python
    hit_rate = pointing_game(grad_cam(model, x), masks).mean()
    ```

    Args:
        maps: `(N, h, w)` attribution maps (by magnitude); resized to the masks.
        masks: `(N, H, W)` boolean object masks.
        tolerance: also count a peak within this many pixels of the mask.
            Defaults to 0.

    Returns:
        float32 `(N,)` of 1.0 (hit) and 0.0 (miss); NaN for an all-zero map.

    Raises:
        ValueError: if the shapes do not pair up or `tolerance` is negative.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance}.")
    maps, masks = _maps_and_masks(maps, masks)
    if tolerance:
        import cv2

        kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
        masks = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])
    flat = maps.reshape(len(maps), -1)
    peak = flat.argmax(axis=1)
    hits = masks.reshape(len(masks), -1)[np.arange(len(maps)), peak].astype(np.float32)
    return np.where(flat.max(axis=1) > 0, hits, np.nan).astype(np.float32)
