"""Writes keras-cnnvis records (images, scalars, structured JSON) into a TensorBoard run.

The record layout is described in `docs/log-format.md`; the cnnvis TensorBoard tab reads it.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import numpy as np

PLUGIN_NAME = "cnnvis"
FORMAT_VERSION = 1


def jsonable(value: Any) -> Any:
    """Converts numpy values and containers to plain JSON types; NaN/inf become `None`.

    Args:
        value: nested dicts/lists/tuples of numbers, strings, bools and numpy values.

    Returns:
        The same structure made of `dict`, `list`, `str`, `int`, `float`, `bool`, `None`.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"Cannot write {type(value).__name__} as JSON: {value!r}")


def _plain(value: Any) -> Any:
    """`json.dumps` hook for numpy values (anything else is refused)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def dumps(payload: Any) -> str:
    """Compact JSON text of `payload` (numpy values allowed; NaN/inf become `null`).

    Plain payloads are encoded in one C-speed pass; only a payload holding NaN, inf,
    bytes or numpy dictionary keys goes through `jsonable` first.
    """
    try:
        return json.dumps(payload, allow_nan=False, separators=(",", ":"), default=_plain)
    except (TypeError, ValueError):
        return json.dumps(jsonable(payload), allow_nan=False, separators=(",", ":"))


@functools.lru_cache(maxsize=None)
def _image_metadata():
    """The summary metadata of TensorBoard's image plugin (what `tf.summary.image` writes)."""
    from tensorboard.plugins.image import metadata

    return metadata.create_summary_metadata(display_name=None, description=None)


def _metadata(kind: str) -> bytes:
    from tensorboard.compat.proto import summary_pb2

    content = json.dumps({"version": FORMAT_VERSION, "kind": kind}).encode("utf-8")
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=content
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )
    return metadata.SerializeToString()


def _as_uint8_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None, :, :, None]
    elif images.ndim == 3:
        images = images[None] if images.shape[-1] in (1, 3, 4) else images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            "Images must be (H, W), (H, W, C) or (N, H, W, C) with C in 1, 3, 4; "
            f"got shape {images.shape}."
        )
    if images.dtype != np.uint8:
        images = np.nan_to_num(images.astype(np.float32), nan=0.0)
        images = (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return images


class LogWriter:
    """A lazily created TensorBoard writer for one run directory.

    Nothing touches the disk until the first record is written, so a callback that never
    logs leaves no empty event file behind.

    Example:

    ```python
    writer = LogWriter("runs/demo/cnnvis")
    writer.images("filters/conv1", grid, step=1)
    writer.json("json/health/conv1", {"verdict": "converging"}, step=1, kind="health")
    writer.close()
    ```

    Args:
        logdir: the run directory to write into.
    """

    def __init__(self, logdir: str):
        self.logdir = os.fspath(logdir)
        self._writer = None
        self.worker = None  # the callbacks' background worker for this run, if any

    @property
    def created(self) -> bool:
        """Whether the underlying event file exists (something was written)."""
        return self._writer is not None

    def _get(self):
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def images(self, tag: str, images: np.ndarray, step: int) -> None:
        """Writes a batch of images as one record (shows in the Images dashboard too).

        Args:
            tag: the record's tag, e.g. `"filters/conv1"`.
            images: uint8 or float (0..1) images, `(H, W[, C])` or `(N, H, W, C)`.
            step: the step (completed epochs).
        """
        import tensorflow as tf

        from keras_cnnvis.rendering.image import encode_png

        batch = _as_uint8_batch(images)
        # The record `tf.summary.image` writes (width, height, PNGs), encoded with OpenCV:
        # a third of the time of TensorFlow's eager encode_png ops.
        height, width = batch.shape[1:3]
        data = [str(width).encode(), str(height).encode()]
        data += [encode_png(img[..., 0] if img.shape[-1] == 1 else img) for img in batch]
        with self._get().as_default():
            tf.summary.write(
                tag, tf.constant(data, dtype=tf.string), step=int(step), metadata=_image_metadata()
            )

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Writes one scalar (NaN and inf are written as they are)."""
        import tensorflow as tf

        with self._get().as_default():
            tf.summary.scalar(tag, float(value), step=int(step))

    def json(self, tag: str, payload: Any, step: int, kind: str) -> None:
        """Writes structured data for the cnnvis tab as a JSON string tensor.

        Args:
            tag: the record's tag, by convention `"json/<kind>/<name>"`.
            payload: JSON-able data (numpy values allowed; NaN/inf become null).
            step: the step (completed epochs).
            kind: what the payload describes (`"filters"`, `"health"`, ...).
        """
        import tensorflow as tf

        text = dumps(payload)
        with self._get().as_default():
            tf.summary.write(
                tag,
                tf.constant(text, dtype=tf.string),
                step=int(step),
                metadata=_metadata(kind),
            )

    def flush(self) -> None:
        """Flushes pending records to disk (no-op before the first record)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Runs the records still queued for the background worker, then flushes and closes
        the event file; a later record opens a new one."""
        if self.worker is not None:
            self.worker.close()
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


class Recorder:
    """Stands in for a `LogWriter` while a record set is computed: it keeps the writes (by
    reference: arrays and payloads given to it must not change afterwards) so that
    `replay` can make them later, on another thread, in the same order.

    Example:

    ```python
    recorder = Recorder(writer)
    recorder.scalar("loss", 0.5, step=1)
    recorder.replay()  # writer.scalar("loss", 0.5, step=1)
    ```

    Args:
        writer: the `LogWriter` the writes are meant for.
    """

    def __init__(self, writer: LogWriter):
        self.target = writer
        self.logdir = writer.logdir
        self.writes: list[tuple[str, tuple]] = []

    def images(self, tag: str, images: np.ndarray, step: int) -> None:
        self.writes.append(("images", (tag, images, int(step))))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writes.append(("scalar", (tag, float(value), int(step))))

    def json(self, tag: str, payload: Any, step: int, kind: str) -> None:
        self.writes.append(("json", (tag, payload, int(step), kind)))

    def flush(self) -> None:
        """Nothing to flush: the writes happen at `replay`."""

    def replay(self) -> None:
        """Makes the kept writes on the writer, in order, and forgets them."""
        writes, self.writes = self.writes, []
        for method, args in writes:
            getattr(self.target, method)(*args)


_SHARED: dict[str, list] = {}


def acquire(logdir: str) -> LogWriter:
    """Returns the process-wide `LogWriter` for `logdir`, shared by all callbacks.

    One event file per run directory keeps every TensorBoard loader (the Rust data server
    and `--load_fast=false`) reading all records. Pair each call with `release`.
    """
    key = os.path.abspath(os.fspath(logdir))
    entry = _SHARED.setdefault(key, [LogWriter(key), 0])
    entry[1] += 1
    return entry[0]


def release(writer: LogWriter) -> None:
    """Gives back a writer from `acquire`; the last holder closes the event file."""
    entry = _SHARED.get(writer.logdir)
    if entry is None or entry[0] is not writer:
        writer.close()
        return
    entry[1] -= 1
    if entry[1] <= 0:
        writer.close()
        del _SHARED[writer.logdir]
