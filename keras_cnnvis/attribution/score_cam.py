"""Score-CAM (Wang et al. 2020): feature maps weighted by the score the model gives the image
masked by each (upsampled, normalised) feature map; gradient-free.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_cnnvis.attribution._common import (
    check_images,
    check_spatial,
    clean_run,
    run,
    spatial_layer,
    upsample as _upsample,
)
from keras_cnnvis.attribution.registry import register


@register("score_cam", family="cam", needs_layer=True, display="smooth")
def score_cam(
    model: keras.Model,
    images: Any,
    target: Any = None,
    layer: Any = "feature_map",
    max_channels: int | None = None,
    upsample: bool = True,
    logits: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Score-CAM: `relu(sum_k s_k A_k)` with `s_k` the score of `image * norm(up(A_k))`.

    Each channel's map is upsampled to the image size and min-max normalised to [0, 1];
    the image multiplied by it is scored by the model (probabilities by default, as in the
    reference implementation). This costs one forward pass per (image, channel); the
    masked copies are batched through one compiled function. `max_channels` keeps only
    the channels with the highest peak activation (Faster Score-CAM).

    Example:

    ```python
    maps = score_cam(model, x_val[:4], max_channels=32)
    ```

    Args:
        model: a single-input image model.
        images: float `(N, H, W, C)` batch.
        target: what to explain (see `targets.resolve_target`). Defaults to None
            (the predicted class of each image).
        layer: the layer whose feature maps mask the image. Defaults to `"feature_map"`.
        max_channels: at most this many channels per image. Defaults to None (all).
        upsample: return maps at the image size (else the layer's). Defaults to True.
        logits: score masked images by pre-softmax scores. Defaults to False.
        batch_size: masked images per compiled call. Defaults to 64.

    Returns:
        float32 `(N, H, W)` non-negative maps (`(N, h, w)` without upsampling).

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, bad images,
            target or `max_channels`.
    """
    if max_channels is not None and (not isinstance(max_channels, int) or max_channels < 1):
        raise ValueError(f"max_channels must be None or a positive int; got {max_channels!r}.")
    x = check_images(model, images)
    info = spatial_layer(model, layer, "score_cam")
    # One pass gives the layer's maps and fixes a predicted class.
    resolved, clean = clean_run(model, x, target, logits, batch_size, capture=(info.path,))
    acts = clean.hidden[0]
    check_spatial(acts, info.path, "score_cam")
    n, h, w, k = acts.shape
    keep = k if max_channels is None else min(k, max_channels)
    channels = np.argsort(-acts.max(axis=(1, 2)), axis=1, kind="stable")[:, :keep]
    cams = np.zeros((n, h, w), np.float32)
    per_call = max(1, batch_size // keep)
    for start in range(0, n, per_call):
        stop = min(n, start + per_call)
        chosen = np.take_along_axis(acts[start:stop], channels[start:stop, None, None, :], -1)
        masks = _upsample(chosen.transpose(0, 3, 1, 2).reshape(-1, h, w), x.shape[1:3]).reshape(
            stop - start, keep, *x.shape[1:3]
        )
        lo = masks.min(axis=(2, 3), keepdims=True)
        span = masks.max(axis=(2, 3), keepdims=True) - lo
        masks = np.where(span > 0, (masks - lo) / np.where(span > 0, span, 1), 0)
        masked = (x[start:stop, None] * masks[..., None]).reshape(-1, *x.shape[1:])
        sub = resolved.take(np.repeat(np.arange(start, stop), keep))
        scores = run(model, masked, sub, wrt=None, logits=logits, batch_size=batch_size).scores
        weights = scores.reshape(stop - start, 1, 1, keep)
        cams[start:stop] = (weights * chosen).sum(-1)
    cams = np.maximum(cams, 0)
    return _upsample(cams, x.shape[1:3]) if upsample else cams
