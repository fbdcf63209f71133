"""Writes Embedding Projector data that the stock Projector tab of TensorBoard reads without any
checkpoint: feature tensors as .tsv, metadata .tsv, a sprite image and projector_config.pbtxt.

Layout inside a run directory (all paths in the config are relative to it, so the log
directory can be moved or served from elsewhere)::

    <run>/projector_config.pbtxt               one `embeddings` entry per tensor
    <run>/projector/<name>.tsv                 features, one row per point
    <run>/projector/<name>_metadata.tsv        a header row, then one row per point
    <run>/projector/sprite_<hash>.png          thumbnails, row-major, square grid
    <run>/checkpoint, <run>/projector/refresh-<k>.*   a one-scalar "refresh" checkpoint

TensorBoard's Projector lists a run when `<run>/projector_config.pbtxt` exists and the run
has an event file. It re-reads configs only when the set of runs or the latest checkpoint
of a run changes, so without help embeddings added while TensorBoard runs would only show
after a restart. After each config update we therefore save a tiny checkpoint holding one
scalar (`refresh`): the Projector sees a new latest checkpoint, re-reads the config (a
browser reload shows the new epochs) and ignores the checkpoint's contents, because it only
lists 2-D tensors.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from keras_cnnvis.rendering import image

CONFIG_FILENAME = "projector_config.pbtxt"
SUBDIR = "projector"
MAX_SPRITE_SIZE = 8192  # the Projector's (WebGL texture) limit per side
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Sprite:
    """Thumbnails of the points tiled into one image, as the Projector expects.

    Attributes:
        image: float32 `(per_row*h, per_row*w, C)` image in [0, 1]; thumbnail `i` is at
            row `i // per_row`, column `i % per_row`, no padding; unused cells are black.
        single_image_dim: `(h, w)` of one thumbnail in pixels (the Projector's
            `single_image_dim` is `[w, h]`).
        per_row: thumbnails per row (= rows: the grid is square).
        count: number of thumbnails.
    """

    image: np.ndarray
    single_image_dim: tuple[int, int]
    per_row: int
    count: int


def make_sprite(images: np.ndarray, max_size: int = 32) -> Sprite:
    """Tiles images into a square sprite for the Projector (and the cnnvis tab).

    Images are shown as they are when in [0, 1], divided by 255 when in 0..255 and
    min-max scaled per image otherwise, then shrunk so their longer side is at most
    `max_size` pixels (and the sprite at most 8192 pixels wide).

    Example:

    ```python
    sprite = make_sprite(x_val[:500])   # 23x23 grid of 32x32 thumbnails
    ```

    Args:
        images: `(n, H, W[, C])` images.
        max_size: the longest thumbnail side in pixels. Defaults to 32.

    Returns:
        A `Sprite`.

    Raises:
        ValueError: for an empty batch or images that are not `(n, H, W[, C])`.
    """
    from keras_cnnvis.rendering.embedding import thumbnails

    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            f"A sprite needs a non-empty batch of images (n, H, W[, C]); got shape "
            f"{images.shape}."
        )
    n = len(images)
    per_row = int(math.ceil(math.sqrt(n)))
    limit = max(1, min(int(max_size), MAX_SPRITE_SIZE // per_row))
    thumbs = thumbnails(images, limit)
    h, w = thumbs.shape[1:3]
    cells = np.zeros((per_row * per_row,) + thumbs.shape[1:], np.float32)
    cells[:n] = thumbs
    sprite = image.tile_grid(cells, cols=per_row, pad=0)
    return Sprite(sprite, (int(h), int(w)), per_row, n)


def _clean(value: object) -> str:
    return re.sub(r"[\t\r\n]+", " ", str(value))


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def tensor_tsv(features: np.ndarray) -> bytes:
    """Features as the Projector's tensor .tsv: one row per point, tab-separated, 6 digits."""
    rows = ["\t".join(f"{v:.6g}" for v in row) for row in np.asarray(features, np.float64)]
    return ("\n".join(rows) + "\n").encode("utf-8")


def metadata_tsv(columns: Mapping[str, Sequence]) -> bytes:
    """Metadata as the Projector's .tsv: a header row when there are several columns.

    (The Projector takes the first line as a header only when it holds a tab, so a single
    column is written without one.)
    """
    names = list(columns)
    values = [list(columns[name]) for name in names]
    lines = ["\t".join(_clean(n) for n in names)] if len(names) > 1 else []
    lines += ["\t".join(_clean(v[i]) for v in values) for i in range(len(values[0]))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def class_metadata(
    indices: Sequence[int],
    labels: Sequence[int],
    predictions: Sequence[int],
    class_names: Sequence[str],
) -> dict[str, list]:
    """Metadata columns of classified points: `index`, `label`, `prediction`, `correct`.

    Example:

    ```python
    class_metadata([4, 9], [0, 1], [0, 0], ["cat", "dog"])
    # {"index": [4, 9], "label": ["cat", "dog"], "prediction": ["cat", "cat"],
    #  "correct": ["yes", "no"]}
    ```

    Args:
        indices: the points' indices in the user's data.
        labels: their classes.
        predictions: the predicted classes.
        class_names: one name per class (a prediction beyond them is `"class i"`).

    Returns:
        `{column: values}` for `write_embedding`.
    """
    names = list(class_names)

    def name(c: int) -> str:
        return names[c] if c < len(names) else f"class {c}"

    return {
        "index": list(indices),
        "label": [name(int(c)) for c in labels],
        "prediction": [name(int(c)) for c in predictions],
        "correct": ["yes" if a == b else "no" for a, b in zip(labels, predictions)],
    }


def read_config(run_dir: str):
    """The run's `ProjectorConfig` (empty when there is no projector_config.pbtxt)."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = ProjectorConfig()
    path = os.path.join(os.fspath(run_dir), CONFIG_FILENAME)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), config)
    return config


def write_embedding(
    run_dir: str,
    tensor_name: str,
    features: np.ndarray,
    metadata: Mapping[str, Sequence] | None = None,
    sprite: Sprite | None = None,
    subdir: str = SUBDIR,
    refresh: bool = True,
):
    """Adds (or replaces) one embedding of a run for TensorBoard's Projector.

    Writes the features and metadata as .tsv files and the sprite as a PNG named by its
    content (written once, shared by every embedding that uses the same images), then
    adds an entry to `<run_dir>/projector_config.pbtxt`, replacing an entry of the same
    name and keeping the others. Every path in the config is relative to `run_dir`.
    Files are replaced atomically, so a reading TensorBoard never sees half a file.

    Example:

    ```python
    sprite = make_sprite(x_val)
    write_embedding("runs/exp1/cnnvis", "features_epoch_003", feats,
                    {"label": names, "prediction": preds}, sprite)
    ```

    Args:
        run_dir: the run directory (it must also hold an event file for TensorBoard to
            list the run).
        tensor_name: the embedding's name in the Projector (letters, digits, `_.-`).
        features: float `(n, D)` finite features.
        metadata: columns `{name: n values}` (shown and used to colour/label points).
            Defaults to None.
        sprite: thumbnails of the `n` points (`make_sprite`). Defaults to None.
        subdir: folder inside `run_dir` for the data files. Defaults to `"projector"`.
        refresh: save the one-scalar refresh checkpoint so a running TensorBoard re-reads
            the config (see the module docstring). Defaults to True.

    Returns:
        The `EmbeddingInfo` entry written to the config.

    Raises:
        ValueError: for a bad name, non-finite features, or metadata/sprite of another
            length than the features.
    """
    from google.protobuf import text_format

    if not _NAME.match(tensor_name or "") or not _NAME.match(subdir or ""):
        raise ValueError(
            f"tensor_name and subdir may hold only letters, digits, '_', '.' and '-'; got "
            f"{tensor_name!r} and {subdir!r}."
        )
    x = np.asarray(features, np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be a non-empty (n, D) array; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(
            "features contain NaN or infinite values; the Projector cannot show them. "
            "Drop those rows first."
        )
    n = len(x)
    if metadata is not None:
        if not metadata:
            metadata = None
        else:
            for name, column in metadata.items():
                if len(column) != n:
                    raise ValueError(
                        f"Metadata column {name!r} has {len(column)} values for {n} points."
                    )
    if sprite is not None and sprite.count != n:
        raise ValueError(f"The sprite holds {sprite.count} images for {n} points.")

    run_dir = os.fspath(run_dir)
    os.makedirs(os.path.join(run_dir, subdir), exist_ok=True)
    config = read_config(run_dir)
    entry = next((e for e in config.embeddings if e.tensor_name == tensor_name), None)
    if entry is None:
        entry = config.embeddings.add()
    entry.Clear()
    entry.tensor_name = tensor_name
    entry.tensor_path = f"{subdir}/{tensor_name}.tsv"
    entry.tensor_shape.extend([n, x.shape[1]])
    _write_atomic(os.path.join(run_dir, entry.tensor_path), tensor_tsv(x))
    if metadata is not None:
        entry.metadata_path = f"{subdir}/{tensor_name}_metadata.tsv"
        _write_atomic(os.path.join(run_dir, entry.metadata_path), metadata_tsv(metadata))
    if sprite is not None:
        png = image.encode_png(sprite.image)
        name = f"{subdir}/sprite_{hashlib.sha1(png).hexdigest()[:12]}.png"
        if not os.path.exists(os.path.join(run_dir, name)):
            _write_atomic(os.path.join(run_dir, name), png)
        entry.sprite.image_path = name
        h, w = sprite.single_image_dim
        entry.sprite.single_image_dim.extend([w, h])
    _write_atomic(
        os.path.join(run_dir, CONFIG_FILENAME),
        text_format.MessageToString(config).encode("utf-8"),
    )
    if refresh:
        save_refresh_checkpoint(run_dir, subdir)
    return entry


def save_refresh_checkpoint(run_dir: str, subdir: str = SUBDIR) -> str:
    """Saves the next one-scalar checkpoint that makes a running Projector re-read configs.

    Keeps only the newest (`<run_dir>/<subdir>/refresh-<k>`, state file
    `<run_dir>/checkpoint` with a relative path, so the log directory can move).

    Returns:
        The checkpoint prefix written.
    """
    import tensorflow as tf

    run_dir = os.fspath(run_dir)
    latest = tf.train.latest_checkpoint(run_dir)
    number = 1
    if latest and re.search(r"-(\d+)$", latest):
        number = int(re.search(r"-(\d+)$", latest).group(1)) + 1
    checkpoint = tf.train.Checkpoint(refresh=tf.Variable(number, dtype=tf.int64))
    manager = tf.train.CheckpointManager(
        checkpoint, run_dir, max_to_keep=1, checkpoint_name=f"{subdir}/refresh"
    )
    return manager.save(checkpoint_number=number)
