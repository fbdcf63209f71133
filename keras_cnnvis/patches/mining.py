"""Mining max-activating patches: stream a dataset through a truncated compiled model and keep,
per channel, only the running top-k images with the receptive-field patch around the peak unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.inputs import check_image_shape, data_length, image_batches
from keras_cnnvis.model import find_layers, forward_until, input_shape, instance_function
from keras_cnnvis.model.receptive_field import ReceptiveField, receptive_field
from keras_cnnvis.patches.context import context_origins, context_size


@dataclass
class MaxPatches:
    """The top-k images of each chosen channel of one layer, with their patches.

    Attributes:
        layer: the layer's path in the model.
        channels: the channel indices, in the order of the rows below.
        values: float32 `(n_channels, k)`: each image's highest activation of the channel
            (spatial maximum), descending.
        indices: int64 `(n_channels, k)`: position of the image in the data stream.
        positions: int64 `(n_channels, k, 2)`: `(row, col)` of the peak unit in the
            layer's feature map.
        boxes: int64 `(n_channels, k, 4)`: `(top, left, bottom, right)` of the image region
            the peak unit depends on (exclusive ends, clipped at the image border).
        patches: float32 `(n_channels, k, h, w, C)`: the unit's theoretical
            receptive-field window, cut to the part that can hold image pixels
            (`window_band`: the whole window unless the field is wider than the image);
            pixels it does not see (outside the image, or only reached through padding)
            are `pad_value`, so the peak unit is at the same place in every tile and
            tiles line up in a grid.
        receptive_field: the layer's `ReceptiveField`.
        n_images: images streamed.
        pad_value: the fill value of the unseen part of each patch.
        context: float32 `(n_channels, k, ctx_h, ctx_w, C)`: for a layer whose field is
            small next to the image (see `context_size`), the region of the source image
            around each patch, exactly as in the image; None otherwise.
        context_origins: int64 `(n_channels, k, 2)`: image `(top, left)` of each context
            region (the patch's window starts at `window - origin` inside it); None
            without context.
    """

    layer: str
    channels: list[int]
    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    receptive_field: ReceptiveField
    n_images: int
    pad_value: float
    context: np.ndarray | None = None
    context_origins: np.ndarray | None = None


def window_band(rf: ReceptiveField) -> tuple[tuple[int, int], tuple[int, int]]:
    """The part of a unit's window that can hold image pixels, in window coordinates.

    Per axis `(lo, hi)`: over every unit of the layer, the image lies within rows
    `lo..hi-1` of its window. A field narrower than the image gives the whole window
    `(0, size)`; a field wider than the image (deep layers: DenseNet121's last stage sees
    2071 px) gives a band of about the image plus the units' spread (96 px for a 64-px
    image), so patches keep every pixel a unit can see and the unit at the same place in
    every tile, without storing the padding around the image.

    Example:

    ```python
    window_band(receptive_field(model, "conv1"))  # ((0, 5), (0, 5)) for a 5x5 field
    ```

    Args:
        rf: the layer's `ReceptiveField`.

    Returns:
        `((lo_rows, hi_rows), (lo_cols, hi_cols))`.
    """
    band = []
    for axis in (0, 1):
        n = int(rf.output_shape[axis])
        if rf.tops:
            tops = np.asarray(rf.tops[axis][:n], np.int64)
        else:
            tops = rf.start[axis] + np.arange(n, dtype=np.int64) * rf.jump[axis]
        size = int(rf.size[axis])
        lo = min(max(0, int((-tops).min())), size - 1)
        hi = max(lo + 1, min(size, int((rf.input_size[axis] - tops).max())))
        band.append((lo, hi))
    return band[0], band[1]


def seen_slices(
    rf: ReceptiveField, row: int, col: int, box: Sequence[int] | None = None
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where the pixels unit `(row, col)` sees lie, in the image and in its patch.

    A patch is the unit's theoretical window `rf.window(row, col)` cut to `window_band(rf)`
    (the whole window unless the field is wider than the image); the unit sees only the
    part `rf.box(row, col)` of it (the window clipped to the image and to what reaches the
    unit through padding).

    Args:
        rf: the layer's `ReceptiveField`.
        row, col: the unit's position in the layer's feature map.
        box: the unit's `(top, left, bottom, right)` if already known. Defaults to None
            (`rf.box(row, col)`).

    Returns:
        `((rows, cols) in the image, (rows, cols) in the patch)` as slices, or None for a
        unit that sees no pixel.
    """
    top, left, _, _ = rf.window(row, col)
    (lo_r, _), (lo_c, _) = window_band(rf)
    top, left = top + lo_r, left + lo_c
    t, l, b, r = rf.box(row, col) if box is None else (int(v) for v in box)
    if b <= t or r <= l:
        return None
    return (slice(t, b), slice(l, r)), (slice(t - top, b - top), slice(l - left, r - left))


def check_k(k: Any, n: int | None = None, what: str = "the data") -> int:
    """`k` as an int, checked to be positive and (when the image count `n` is known) at most
    `n`.

    Raises:
        ValueError: for a `k` that is not a positive integer or larger than `n`.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if n is not None and k > n:
        raise ValueError(
            f"k={k} is larger than the {n} images in {what}; pass k <= {n} or more images."
        )
    return int(k)


class _TopK:
    """Running top-k (per channel) of one layer, with the patches (and context regions)."""

    def __init__(
        self,
        rf: ReceptiveField,
        channels: list[int],
        k: int,
        pad_value: float,
        context: tuple[int, int] | None = None,
    ):
        self.rf = rf
        self.channels = channels
        self.k = k
        self.pad_value = float(pad_value)
        self.context = context
        n = len(channels)
        self.values = np.zeros((0, n), np.float32)
        self.indices = np.zeros((0, n), np.int64)
        self.flat = np.zeros((0, n), np.int64)
        self.slots = np.zeros((0, n), np.int64)
        self.store: np.ndarray | None = None
        self.context_store: np.ndarray | None = None
        self.width = rf.output_shape[1]

    def crop(self, image: np.ndarray, flat: int, slot: int, c: int) -> None:
        """Copies unit `flat`'s patch (and context) of `image` into slot `slot`, column `c`."""
        out = self.store[slot, c]
        out[...] = self.pad_value
        row, col = divmod(int(flat), self.width)
        seen = seen_slices(self.rf, row, col)
        if seen is not None:
            out[seen[1]] = image[seen[0]]
        if self.context is not None:
            top, left = context_origins(self.rf, (row, col), self.context)
            h, w = self.context
            self.context_store[slot, c] = image[top : top + h, left : left + w]

    def update(self, values: np.ndarray, flat: np.ndarray, images: np.ndarray, offset: int) -> None:
        n_batch, n_ch = values.shape
        if self.store is None:
            n_c = images.shape[-1]
            (lo_r, hi_r), (lo_c, hi_c) = window_band(self.rf)
            self.store = np.empty((self.k, n_ch, hi_r - lo_r, hi_c - lo_c, n_c), np.float32)
            if self.context is not None:
                self.context_store = np.empty((self.k, n_ch) + self.context + (n_c,), np.float32)
        m = len(self.values)
        all_values = np.concatenate([self.values, values])
        # Stable sort: among equal values the earlier image (smaller index) wins, the same
        # order as one sort over the whole dataset.
        order = np.argsort(-all_values, axis=0, kind="stable")[: self.k]
        fresh = order >= m
        batch_idx = np.broadcast_to(offset + np.arange(n_batch)[:, None], values.shape)
        self.values = np.take_along_axis(all_values, order, 0)
        self.indices = np.take_along_axis(np.concatenate([self.indices, batch_idx]), order, 0)
        self.flat = np.take_along_axis(np.concatenate([self.flat, flat.astype(np.int64)]), order, 0)
        slots = np.full(order.shape, -1, np.int64)
        if m:
            kept = np.take_along_axis(self.slots, np.minimum(order, m - 1), 0)
            slots = np.where(fresh, -1, kept)
        for c in np.flatnonzero(fresh.any(axis=0)):
            used = set(slots[~fresh[:, c], c].tolist())
            free = iter(s for s in range(self.k) if s not in used)
            for r in np.flatnonzero(fresh[:, c]):
                slot = next(free)
                self.crop(images[order[r, c] - m], self.flat[r, c], slot, c)
                slots[r, c] = slot
        self.slots = slots

    def result(self, layer: str, n_images: int) -> MaxPatches:
        n_ch = len(self.channels)
        rows, cols = np.divmod(self.flat.T, self.width)
        positions = np.stack([rows, cols], axis=-1).astype(np.int64)
        boxes = np.array(
            [[self.rf.box(r, c) for r, c in ch] for ch in positions], np.int64
        ).reshape(n_ch, -1, 4)
        pick = (self.slots.T, np.arange(n_ch)[:, None])
        context = origins = None
        if self.context is not None:
            context = self.context_store[pick].astype(np.float32)
            origins = context_origins(self.rf, positions, self.context)
        return MaxPatches(
            layer=layer,
            channels=list(self.channels),
            values=self.values.T.copy(),
            indices=self.indices.T.copy(),
            positions=positions,
            boxes=boxes,
            patches=self.store[pick].astype(np.float32),
            receptive_field=self.rf,
            n_images=n_images,
            pad_value=self.pad_value,
            context=context,
            context_origins=origins,
        )


class PatchMiner:
    """Streams image batches through a compiled, truncated model and keeps the running
    top-k (image, peak unit, patch) of chosen channels of one or several layers.

    Each batch runs only the layers up to the deepest chosen one (`forward_until` inside a
    `tf.function`); the compiled step returns just the spatial maximum of each channel
    and its position, so a batch costs one truncated forward pass plus a few host-side
    array operations, and memory holds only the current top-k patches: per layer
    `k * n_channels * (field window + context window) * C` float32 values. A context
    window (see `context_size`) is kept only for a layer whose field is small next to the
    image, and is at most the image; e.g. a 5x5 first layer on 64x64 RGB images keeps
    22x22 regions: 9 images x 8 channels cost 22 KB of patches and 0.4 MB of context.

    Example:

    ```python
    miner = PatchMiner(model, ["conv2", "conv4"], channels=[0, 1, 2], k=9)
    for batch in image_batches(x_val):
        miner.update(batch)
    conv2, conv4 = miner.results()
    ```

    Args:
        model: a single-input channels-last image model of any kind.
        layers: layers with spatial output (see `find_layer`).
        channels: channel indices, used for every layer, or a list with one entry (a
            list or None) per layer; None means all channels; an int n means the first n
            channels of each layer (all of a layer with fewer). Defaults to None.
        k: images kept per channel. Defaults to 9.
        pad_value: fill value for the part of a patch the unit does not see. Defaults to
            0.0 (what `"same"` zero padding feeds the network).
        image_shape: `(height, width, channels)` when the model does not fix its input
            size. Defaults to None (the model's input shape).
        context: keep the image region around each patch: `"auto"` (for layers whose
            field is small next to the image), True (every layer) or False. Defaults to
            `"auto"`.

    Raises:
        ValueError: for an unknown layer, a layer without spatial output, a channel
            index out of range, `k < 1` or an unknown `context`.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: Any,
        channels: Sequence | None = None,
        k: int = 9,
        pad_value: float = 0.0,
        image_shape: Sequence[int] | None = None,
        context: bool | str = "auto",
    ):
        self.model = model
        self.k = check_k(k)
        self.pad_value = float(pad_value)
        self.infos = find_layers(model, layers)
        shape = tuple(image_shape) if image_shape is not None else input_shape(model)
        self.fields = [receptive_field(model, info.layer, shape) for info in self.infos]
        self.contexts = [context_size(rf, context) for rf in self.fields]
        self.shape = tuple(shape)
        lists = (list, tuple, range, np.ndarray)
        per_layer = (
            list(channels)
            if isinstance(channels, lists)
            and len(channels) == len(self.infos)
            and all(c is None or isinstance(c, lists) for c in channels)
            else [channels] * len(self.infos)
        )
        self.channels = [
            self._channels(info.path, rf.output_shape[-1], ch)
            for info, rf, ch in zip(self.infos, self.fields, per_layer)
        ]
        self._fn = instance_function(
            self._step,
            input_signature=[tf.TensorSpec((None,) + self.shape, tf.float32)],
        )
        self.reset()

    @staticmethod
    def _channels(path: str, n: int, chosen) -> list[int]:
        if chosen is None:
            return list(range(n))
        if isinstance(chosen, (int, np.integer)) and not isinstance(chosen, bool):
            return list(range(min(n, int(chosen))))
        chosen = [int(c) for c in np.asarray(chosen, dtype=np.int64).reshape(-1)]
        if not chosen:
            raise ValueError(f"No channels chosen for layer '{path}'.")
        bad = [c for c in chosen if not 0 <= c < n]
        if bad:
            raise ValueError(
                f"Channel index {bad[0]} is out of range: layer '{path}' has {n} channels "
                f"(0..{n - 1})."
            )
        return chosen

    def _step(self, x):
        maps = forward_until(self.model, [i.layer for i in self.infos], x)
        out = []
        for fmap, rf, chans in zip(maps, self.fields, self.channels):
            fmap = tf.cast(fmap, tf.float32)
            if chans == list(range(chans[0], chans[0] + len(chans))):  # a slice, no gather
                if len(chans) != rf.output_shape[-1]:  # (a gather took a third of the step)
                    fmap = fmap[..., chans[0] : chans[0] + len(chans)]
            else:
                fmap = tf.gather(fmap, chans, axis=-1)
            flat = tf.reshape(fmap, [tf.shape(fmap)[0], -1, len(chans)])
            # One pass over the map (argmax), then gather the B x C maxima.
            where = tf.argmax(flat, axis=1, output_type=tf.int32)
            rows = tf.broadcast_to(tf.range(tf.shape(flat)[0])[:, None], tf.shape(where))
            cols = tf.broadcast_to(tf.range(len(chans))[None, :], tf.shape(where))
            out.append((tf.gather_nd(flat, tf.stack([rows, where, cols], axis=-1)), where))
        return out

    def reset(self) -> None:
        """Forgets every image seen (keeps the compiled step)."""
        self.n_images = 0
        self._tops = [
            _TopK(rf, ch, self.k, self.pad_value, ctx)
            for rf, ch, ctx in zip(self.fields, self.channels, self.contexts)
        ]

    def update(self, images: np.ndarray) -> None:
        """Adds one batch `(B, H, W, C)` of images to the running top-k."""
        images = np.asarray(images, dtype=np.float32)
        check_image_shape(images, self.model, "data images", self.shape)
        if not len(images):
            return
        for top, (values, flat) in zip(self._tops, self._fn(tf.constant(images))):
            top.update(values.numpy(), flat.numpy(), images, self.n_images)
        self.n_images += len(images)

    def results(self) -> list[MaxPatches]:
        """The top-k of every layer, in the order the layers were given.

        Raises:
            ValueError: if fewer than `k` images were seen.
        """
        check_k(self.k, self.n_images)
        return [top.result(info.path, self.n_images) for top, info in zip(self._tops, self.infos)]


def max_activating_patches(
    model: keras.Model,
    layer: Any,
    data: Any,
    channels: Sequence[int] | None = None,
    k: int = 9,
    batch_size: int = 64,
    pad_value: float = 0.0,
    context: bool | str = "auto",
) -> MaxPatches:
    """Finds, for each channel of a layer, the k images that activate it most, and the
    receptive-field patch around the peak unit in each.

    An image's score for a channel is the channel's spatial maximum. The data is streamed
    batch by batch through the model truncated after `layer` (compiled once), keeping
    only the running top-k per channel, so memory does not grow with the dataset.
    Patches are the unit's full theoretical receptive-field window (`size` of
    `receptive_field(model, layer)`), so all tiles have one size and the peak unit sits at
    the same place in each; pixels the unit does not see (beyond the image border, or
    reached only through intermediate padding) are filled with `pad_value`. Ties are
    broken in favour of the earlier image. For a small field (see `context_size`) the
    result also holds the image region around each patch (`context`), to show the patch
    in place.

    Example:

    ```python
    top = max_activating_patches(model, "conv3", x_val, channels=[0, 5, 9], k=9)
    top.patches.shape  # (3, 9, 20, 20, 3)
    top.indices[0]     # images that excite channel 0 most, best first
    ```

    Args:
        model: a single-input channels-last image model of any kind.
        layer: a layer with spatial output (see `find_layer`).
        data: images: a numpy array `(N, H, W, C)`, `(x, y)`, a `tf.data.Dataset`, a
            `PyDataset` or a generator (see `image_batches`).
        channels: channel indices. Defaults to None (all channels).
        k: images per channel. Defaults to 9.
        batch_size: batch size for arrays and unbatched sources. Defaults to 64.
        pad_value: fill value for unseen patch pixels. Defaults to 0.0.
        context: keep the image region around each patch: `"auto"` (when the field is
            small next to the image), True or False. Defaults to `"auto"`.

    Returns:
        A `MaxPatches`.

    Raises:
        ValueError: for images of the wrong shape, `k` larger than the number of images,
            a channel index out of range, or a layer without spatial output.
    """
    check_k(k, data_length(data))
    batches = image_batches(data, batch_size)
    shape = input_shape(model)
    first = None
    if shape is None or any(v is None for v in shape):
        first = next(batches, None)
        if first is None:
            raise ValueError("The data holds no images.")
        shape = first.shape[1:]
    miner = PatchMiner(model, layer, [channels], k, pad_value, shape, context)
    if first is not None:
        miner.update(first)
    for batch in batches:
        miner.update(batch)
    return miner.results()[0]
