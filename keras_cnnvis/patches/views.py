"""Unit views: what a mined peak unit responds to inside its own patch, by guided backprop or
deconvnet of that one unit (Springenberg et al. 2015; Zeiler & Fergus 2014).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_cnnvis.patches.mining import MaxPatches, seen_slices

VIEWS = ("guided_backprop", "deconvnet")
"""The attribution methods `unit_views` can show."""


def unit_views(
    model: keras.Model, result: MaxPatches, method: str = "guided_backprop", batch_size: int = 64
) -> np.ndarray:
    """The guided-backprop (or deconvnet) view of each peak unit on its own patch.

    Each patch's seen pixels are pasted at their place in an empty image (the unit sees
    nothing else, so its value and its backward pass are those of the original image) and
    the method explains that one unit, `(layer, channel, row, col)`. This is the
    Springenberg et al. / Zeiler & Fergus figure: which pixels inside the patch the unit
    responds to.

    Example:

    ```python
    top = max_activating_patches(model, "conv3", x_val, channels=[0, 1], k=6)
    views = unit_views(model, top)  # (2, 6, 20, 20, 3), 0.5 = no influence
    ```

    Args:
        model: the model the patches were mined from (with ReLUs the method can override).
        result: the output of `max_activating_patches`.
        method: `"guided_backprop"` or `"deconvnet"`. Defaults to `"guided_backprop"`.
        batch_size: images per compiled call. Defaults to 64.

    Returns:
        float32 `(n_channels, k, h, w, C)` in [0, 1] aligned with `result.patches`:
        each view scaled symmetrically on its own (0.5 = zero gradient).

    Raises:
        ValueError: for an unknown method, or a model whose ReLUs cannot be overridden.
    """
    from keras_cnnvis import attribution
    from keras_cnnvis.rendering import image

    if method not in VIEWS:
        raise ValueError(f"method must be one of {VIEWS}; got {method!r}.")
    rf = result.receptive_field
    n_ch, k = result.values.shape
    patches = result.patches.reshape((n_ch * k,) + result.patches.shape[2:])
    canvases = np.zeros((n_ch * k,) + tuple(rf.input_size) + patches.shape[-1:], np.float32)
    units = np.zeros((n_ch * k, 3), np.int32)
    seen = []
    for i, (ch, slot) in enumerate(np.ndindex(n_ch, k)):
        row, col = (int(v) for v in result.positions[ch, slot])
        seen.append(seen_slices(rf, row, col, result.boxes[ch, slot]))
        if seen[-1] is not None:
            canvases[i][seen[-1][0]] = patches[i][seen[-1][1]]
        units[i] = (result.channels[ch], row, col)
    base = attribution.resolve_target(model, (result.layer, 0, 0, 0), len(units))
    target = attribution.Target(
        base.kind, base.score_fn, (units,), base.arg_specs, base.capture, base.layer
    )
    fn = getattr(attribution, method)
    grads = fn(model, canvases, target=target, reduce=None, batch_size=batch_size)
    out = np.zeros(patches.shape, np.float32)
    for i, where in enumerate(seen):
        if where is not None:
            out[i][where[1]] = grads[i][where[0]]
    out = image.normalize(out, mode="symmetric", axis=(1, 2, 3))
    return out.reshape((n_ch, k) + out.shape[1:])
