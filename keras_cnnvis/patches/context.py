"""Context windows: for a layer whose receptive field is small next to the image, the fixed-size
region of the source image around each peak unit's field, kept so its patch can be read in place.
"""

from __future__ import annotations

import numpy as np

from keras_cnnvis.model.receptive_field import ReceptiveField

MIN_SIDE = 24
"""Fields narrower than this many pixels are shown in context (whatever the image size)."""

IMAGE_FRACTION = 4
"""... and so are fields narrower than `1 / IMAGE_FRACTION` of the image side."""

WIDEN = 4
"""A context window is at least this many times the field ..."""

IMAGE_SHARE = 3
"""... and at least `1 / IMAGE_SHARE` of the image side, clipped to the image."""


def is_small(rf: ReceptiveField) -> bool:
    """Whether a layer's field is small next to its image: on both axes narrower than
    `max(MIN_SIDE, image side / IMAGE_FRACTION)` pixels (a 3x3 or 5x5 first layer, or a
    40 px field on a 224 px image), so its patches alone show too little to read."""
    return all(s < max(MIN_SIDE, n / IMAGE_FRACTION) for s, n in zip(rf.size, rf.input_size))


def check_context(context) -> bool | str:
    """`context` checked to be `"auto"`, True or False.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(context, str) and context == "auto" or isinstance(context, bool):
        return context
    raise ValueError(f"context must be 'auto', True or False; got {context!r}.")


def context_size(rf: ReceptiveField, context: bool | str = "auto") -> tuple[int, int] | None:
    """The context window `(height, width)` of a layer's patches, or None for no context.

    Per axis the window is `max(WIDEN * field, ceil(image / IMAGE_SHARE))` pixels, at most
    the image: a 3x3 field on a 64 px image gets 22 px, a 10 px field 40 px, a 20 px field
    the whole image.

    Example:

    ```python
    context_size(receptive_field(model, "conv1"))  # (22, 22) for a 5x5 field on 64x64
    ```

    Args:
        rf: the layer's `ReceptiveField`.
        context: `"auto"` (a window when `is_small(rf)`), True (always) or False (never).
            Defaults to `"auto"`.

    Returns:
        The window size, or None when the layer's patches are shown alone (a large field,
        `context=False`, or a window that would add nothing: the field already spans the
        image).

    Raises:
        ValueError: for a `context` that is not "auto", True or False.
    """
    if check_context(context) is False or (context == "auto" and not is_small(rf)):
        return None
    size = tuple(
        int(min(n, max(WIDEN * s, -(-n // IMAGE_SHARE)))) for s, n in zip(rf.size, rf.input_size)
    )
    if all(c <= s for c, s in zip(size, rf.size)):
        return None
    return size


def context_origins(rf: ReceptiveField, positions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Top-left image pixel `(top, left)` of the context window of each unit.

    The window is centred on the unit's theoretical field (`rf.window`) and shifted to
    lie inside the image, so every window holds real pixels only; a unit at the border
    sits off-centre in its window.

    Args:
        rf: the layer's `ReceptiveField`.
        positions: int `(..., 2)` `(row, col)` of units in the layer's feature map.
        size: the window `(height, width)` from `context_size`.

    Returns:
        int64 `(..., 2)`.
    """
    positions = np.asarray(positions, np.int64)
    flat = positions.reshape(-1, 2)
    out = np.empty_like(flat)
    for i, (row, col) in enumerate(flat):
        top, left, _, _ = rf.window(int(row), int(col))
        for axis, start in enumerate((top, left)):
            origin = start + (rf.size[axis] - size[axis]) // 2
            out[i, axis] = min(max(origin, 0), rf.input_size[axis] - size[axis])
    return out.reshape(positions.shape)
