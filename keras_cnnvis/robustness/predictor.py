"""The compiled classifier of the robustness measures: predicted classes of [0, 1] images in
batches sized by a byte budget, the kept attack, and the corrupted images kept across calls.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from keras_cnnvis.robustness.corruptions import CORRUPTIONS, apply, check_value_range

CACHE_BYTES = 256 * 2**20
"""What a `ClassPredictor` may keep of corrupted images (float32, as made): the defaults of
`RobustnessCallback` on 64x64 RGB images (200 images x 5 corruptions x 3 severities, 147 MB)
fit; above it the pairs that do not fit are made again at every call."""


def check_batch_size(batch_size: int | None, allow_none: bool = False) -> int | None:
    """`batch_size` as a positive int (or None when allowed), else a ValueError."""
    if batch_size is None and allow_none:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}.")
    return int(batch_size)


def input_fn(value_range: Sequence[float], preprocess: Callable | None) -> Callable:
    """Maps [0, 1] images (numpy or tensors) to the model's input."""
    low, high = check_value_range(value_range)

    def fn(x):
        if (low, high) != (0.0, 1.0):
            x = x * (high - low) + low
        return x if preprocess is None else preprocess(x)

    return fn


def corrupted_chunks(
    x01: np.ndarray, name: str, severity: int, batch_size: int, seed: int
) -> Iterator[np.ndarray]:
    """The images under one corruption and severity, `batch_size` at a time; the chunk
    starting at image `i` draws from the seed `(seed, corruption, severity, i)`."""
    for start in range(0, len(x01), batch_size):
        rng = np.random.default_rng([seed, CORRUPTIONS.index(name), severity, start])
        yield apply(x01[start : start + batch_size], name, severity, rng)


class ClassPredictor:
    """A classifier's predicted classes for image batches within `value_range`, through one
    compiled batched forward pass (traced once for every batch size) and the one
    predicted-class rule (`keras_cnnvis.inputs.predicted_classes`).

    Build one and pass it as `predictor=` to `corruption_accuracy` and
    `adversarial_accuracy` to pay the trace once (e.g. across the epochs of a callback):
    the pass calls the live model, so it sees the current weights. It also keeps the
    corrupted images `corruption_accuracy` makes (they are seeded, so the same at every
    call on the same images), up to `cache_bytes`: a later call on the same images runs
    only the model on them.

    Example:

    ```python
    predictor = ClassPredictor(model)
    predictor(x_val)                   # int64 classes, one per image
    corruption_accuracy(model, x_val, y_val, predictor=predictor)
    ```

    Args:
        model: a Keras image classifier with one input and one output.
        batch_size: images per forward pass. Defaults to None (`batch_size_for` the model:
            256 for the demo CNN at 64x64, 25 for a 224x224 ResNet50).
        value_range: the range of the pixels it is given. Defaults to `(0, 1)`.
        preprocess: maps images in `value_range` to the model's input. Defaults to None.
        cache_bytes: the most bytes of corrupted images kept between calls; 0 keeps none.
            Defaults to `CACHE_BYTES` (256 MiB).

    Raises:
        ValueError: for a batch size that is not a positive integer (or None), a bad value
            range or a negative `cache_bytes`.
    """

    def __init__(
        self,
        model,
        batch_size: int | None = None,
        value_range: Sequence[float] = (0, 1),
        preprocess: Callable | None = None,
        cache_bytes: int = CACHE_BYTES,
    ):
        from keras_cnnvis.model import BatchFunction, output_activation, predict_fn

        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, (int, np.integer)):
            raise ValueError(f"cache_bytes must be an integer >= 0; got {cache_bytes!r}.")
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be an integer >= 0; got {cache_bytes}.")
        self.model = model
        self.batch_size = check_batch_size(batch_size, allow_none=True)
        self.value_range = check_value_range(value_range)
        self.preprocess = preprocess
        self.cache_bytes = int(cache_bytes)
        self.to_input = input_fn(value_range, preprocess)
        self.activation = output_activation(model).name
        self.forward = BatchFunction(predict_fn(model))
        self._attacks: dict = {}
        self._checked: set = set()
        self._images: np.ndarray | None = None  # the images the kept corruptions are of
        self._setting: tuple | None = None  # (corruption batch size, seed) of them
        self._corrupted: dict = {}  # (name, severity) -> float32 (N, H, W, C)

    def batch_for(self, image_shape: Sequence[int]) -> int:
        """Images per forward pass for images of `image_shape`."""
        if self.batch_size is not None:
            return self.batch_size
        from keras_cnnvis.model.compiled import batch_size_for

        return batch_size_for(self.model, tuple(image_shape))

    def attack(self, shape: Sequence[int]):
        """The compiled attack of the model on [0, 1] images of `shape` through this
        predictor's input mapping, built once and kept (`synthesis.adversarial.Attack`)."""
        from keras_cnnvis.synthesis.adversarial import Attack

        shape = tuple(int(s) for s in shape)
        if shape not in self._attacks:
            self._attacks[shape] = Attack(self.model, shape, self.to_input)
        return self._attacks[shape]

    def check_classes(self, labels: np.ndarray, shape: Sequence[int]) -> None:
        """`synthesis._checks.check_classes` for these labels, once per label set and shape
        (the model's classes do not change while it trains)."""
        from keras_cnnvis.synthesis._checks import check_classes

        key = (tuple(np.unique(labels).tolist()), tuple(int(s) for s in shape))
        if key not in self._checked:
            check_classes(self.model, np.unique(labels), key[1], self.to_input)
            self._checked.add(key)

    def outputs(self, x01: np.ndarray) -> np.ndarray:
        """The model's float32 outputs for images in [0, 1] (mapped to `value_range`)."""
        out = []
        batch = self.batch_for(x01.shape[1:])
        for start in range(0, len(x01), batch):
            images = np.asarray(self.to_input(x01[start : start + batch]), np.float32)
            out.append(np.asarray(self.forward(images), np.float32))
        return np.concatenate(out)

    def __call__(self, x01: np.ndarray) -> np.ndarray:
        """The predicted classes (int64) of images in [0, 1]."""
        from keras_cnnvis.inputs import predicted_classes

        return predicted_classes(self.outputs(x01), self.activation)

    def stream(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """The predicted classes of the images of `chunks`, in order, in the forward
        batches of their concatenation (so a stream and one array agree bit for bit)
        while holding at most one forward batch and one chunk."""
        out, pending, held, batch = [], [], 0, None
        for chunk in chunks:
            batch = batch or self.batch_for(chunk.shape[1:])
            pending.append(chunk)
            held += len(chunk)
            while held >= batch:
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                out.append(self(joined[:batch]))
                pending = [joined[batch:]] if held > batch else []
                held -= batch
        if held:
            out.append(self(np.concatenate(pending)))
        return np.concatenate(out)

    # -- the kept corruptions -------------------------------------------------------------
    def corrupted_classes(
        self, x01: np.ndarray, name: str, severity: int, batch_size: int, seed: int, keep: bool
    ) -> np.ndarray:
        """The predicted classes of `x01` under one corruption and severity (made as
        `corrupted_chunks` does). With `keep`, the corrupted images are kept for the next
        call on the same images while the kept ones fit in `cache_bytes`."""
        if keep:
            self._match(x01, batch_size, seed)
            images = self._corrupted.get((name, severity))
            if images is None and self._fits(x01):
                images = np.concatenate(
                    list(corrupted_chunks(x01, name, severity, batch_size, seed))
                )
                self._corrupted[(name, severity)] = images
            if images is not None:
                return self.stream([images])
        return self.stream(corrupted_chunks(x01, name, severity, batch_size, seed))

    @property
    def cached_bytes(self) -> int:
        """Bytes kept now: the corrupted images and the images they are of."""
        kept = sum(a.nbytes for a in self._corrupted.values())
        return kept + (0 if self._images is None else self._images.nbytes)

    def clear_cache(self) -> None:
        """Forgets the kept corrupted images."""
        self._images, self._setting, self._corrupted = None, None, {}

    def _match(self, x01: np.ndarray, batch_size: int, seed: int) -> None:
        """Drops the kept corruptions unless they are of these very pixels and settings."""
        kept, setting = self._images, (int(batch_size), int(seed))
        same = (
            kept is not None
            and setting == self._setting
            and kept.shape == x01.shape
            and kept.dtype == x01.dtype
            and np.array_equal(kept.view(np.uint8), np.ascontiguousarray(x01).view(np.uint8))
        )
        if not same:
            self.clear_cache()
            if self.cache_bytes >= 2 * x01.nbytes:  # the images and one corrupted copy
                self._images, self._setting = np.ascontiguousarray(x01).copy(), setting

    def _fits(self, x01: np.ndarray) -> bool:
        return self._images is not None and self.cached_bytes + x01.nbytes <= self.cache_bytes

    def check(self, model, value_range, preprocess) -> "ClassPredictor":
        """Raises unless this predictor runs `model` with this value range and preprocess."""
        if (
            model is not self.model
            or check_value_range(value_range) != self.value_range
            or preprocess is not self.preprocess
        ):
            raise ValueError(
                "predictor must be a ClassPredictor of this model with the same value_range "
                "and preprocess; build it with ClassPredictor(model, batch_size, value_range, "
                "preprocess)."
            )
        return self


__all__ = ["CACHE_BYTES", "ClassPredictor", "corrupted_chunks"]
