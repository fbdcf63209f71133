"""Robustness measures: a classifier's accuracy under each corruption and severity, and
under PGD attacks of growing strength (the corruption error against a baseline is in
`mce.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from keras_cnnvis.robustness.corruptions import (
    BENCHMARK,
    FAMILIES,
    SEVERITIES,
    check_name,
    check_severity,
    to_unit,
)
from keras_cnnvis.robustness.predictor import ClassPredictor
from keras_cnnvis.robustness.predictor import check_batch_size as _check_batch_size


@dataclass
class CorruptionAccuracy:
    """A model's accuracy on clean and corrupted images.

    Attributes:
        corruptions: the corruption names, one per row of `accuracy`.
        severities: the severities, one per column.
        accuracy: float64 `(len(corruptions), len(severities))`, in [0, 1].
        clean: accuracy on the clean images.
        count: the number of images.
    """

    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    accuracy: np.ndarray
    clean: float
    count: int

    @property
    def errors(self) -> np.ndarray:
        """Error rates `1 - accuracy`, shaped like `accuracy`."""
        return 1.0 - self.accuracy

    @property
    def clean_error(self) -> float:
        return 1.0 - self.clean

    @property
    def mean(self) -> float:
        """Mean corrupted accuracy over every corruption and severity."""
        return float(self.accuracy.mean())

    def by_severity(self) -> np.ndarray:
        """Mean accuracy over the corruptions at each severity."""
        return self.accuracy.mean(axis=0)

    def by_family(self) -> dict[str, np.ndarray]:
        """Mean accuracy per severity for each family (noise, blur, weather, digital) with
        at least one corruption here."""
        out = {}
        for family, names in FAMILIES.items():
            rows = [i for i, name in enumerate(self.corruptions) if name in names]
            if rows:
                out[family] = self.accuracy[rows].mean(axis=0)
        return out

    def as_dict(self) -> dict:
        """Plain types, e.g. for JSON: clean accuracy, severities, accuracy per corruption."""
        return {
            "clean": self.clean,
            "count": self.count,
            "severities": list(self.severities),
            "accuracy": {
                n: [float(a) for a in row] for n, row in zip(self.corruptions, self.accuracy)
            },
        }


def _predictor(model, value_range, preprocess, predictor) -> ClassPredictor:
    if predictor is None:
        return ClassPredictor(model, None, value_range, preprocess)
    return predictor.check(model, value_range, preprocess)


def _prepare(model, x, y, value_range, what="images"):
    from keras_cnnvis.inputs import check_image_shape, class_labels

    x01 = to_unit(x, value_range, what)
    check_image_shape(x01, model, what)
    return x01, class_labels(y, len(x01))


def corruption_accuracy(
    model,
    x: Any,
    y: Any,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    value_range: Sequence[float] = (0, 1),
    preprocess: Callable | None = None,
    predictor: ClassPredictor | None = None,
) -> CorruptionAccuracy:
    """A classifier's accuracy on clean images and under each corruption and severity.

    The images are corrupted `batch_size` at a time (never all corruptions in memory) and
    run through one compiled forward pass; classes follow `keras_cnnvis.inputs.
    predicted_classes` (softmax or logits, one sigmoid or logit unit). The corruption of
    the chunk starting at image `i` draws from the seed `(seed, corruption, severity, i)`:
    the same arguments give the same figures. A kept `predictor` also keeps the corrupted
    images (up to its `cache_bytes`): called again on the same images, it runs only the
    model, with the same figures bit for bit.

    Example:

    ```python
    table = corruption_accuracy(model, x_val, y_val, corruptions=FAMILIES["noise"])
    table.accuracy          # (3, 5): accuracy per noise and severity
    table.by_severity()     # falls with severity
    ```

    Args:
        model: a Keras image classifier with one input and one output.
        x: images `(N, H, W, C)`, C 1 or 3, within `value_range`.
        y: labels, class indices `(N,)` or one-hot `(N, classes)`.
        corruptions: names from `CORRUPTIONS`. Defaults to None (the 15 of `BENCHMARK`).
        severities: from 1 to 5. Defaults to None (all five).
        batch_size: images per corruption call (the chunks the noise is seeded by).
            Defaults to 64.
        seed: seed of the random corruptions. Defaults to 0.
        value_range: the range of the pixels of `x`. Defaults to `(0, 1)`.
        preprocess: maps images in `value_range` to the model's input (e.g.
            `keras.applications.resnet50.preprocess_input`). Defaults to None.
        predictor: a `ClassPredictor` of `model` (same `value_range` and `preprocess`)
            whose compiled pass and kept corruptions to reuse; its `batch_size` is the
            forward batch. Defaults to None (a new one, traced once, forward batches of
            `batch_size_for` the model).

    Returns:
        A `CorruptionAccuracy`.

    Raises:
        ValueError: for unknown corruptions, severities outside 1-5, images the model does
            not take or outside `value_range`, labels that are not one per image.
    """
    names = tuple(BENCHMARK if corruptions is None else (check_name(n) for n in corruptions))
    levels = tuple(SEVERITIES if severities is None else (check_severity(s) for s in severities))
    if not names or not levels:
        raise ValueError("Pass at least one corruption and one severity (None: all).")
    batch_size = _check_batch_size(batch_size)
    x01, labels = _prepare(model, x, y, value_range)
    keep = predictor is not None  # a new predictor dies with this call: nothing to keep
    classes = _predictor(model, value_range, preprocess, predictor)
    clean = float(np.mean(classes(x01) == labels))
    accuracy = np.zeros((len(names), len(levels)))
    for i, name in enumerate(names):
        for j, severity in enumerate(levels):
            predicted = classes.corrupted_classes(x01, name, severity, batch_size, seed, keep)
            accuracy[i, j] = int(np.sum(predicted == labels)) / len(x01)
    return CorruptionAccuracy(names, levels, accuracy, clean, len(x01))


def adversarial_accuracy(
    model,
    x: Any,
    y: Any,
    epsilons: Sequence[float] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255),
    method: str = "pgd",
    steps: int = 10,
    step_size: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
    value_range: Sequence[float] = (0, 1),
    preprocess: Callable | None = None,
    predictor: ClassPredictor | None = None,
) -> np.ndarray:
    """Accuracy under untargeted L-infinity attacks of each strength `epsilon`.

    Runs `keras_cnnvis.synthesis.adversarial_example` (PGD by default: `steps` sign steps
    of `step_size` from a random start in the epsilon-ball, each projected back into it)
    against the true labels, then counts the images still classified correctly. An
    epsilon of 0 is the clean accuracy (no attack).

    Example:

    ```python
    adversarial_accuracy(model, x_val[:256], y_val[:256], epsilons=[0, 2 / 255, 8 / 255])
    ```

    Args:
        model: a Keras image classifier with one input and one output.
        x: images `(N, H, W, C)` within `value_range`.
        y: labels, class indices or one-hot.
        epsilons: attack strengths, the largest change per pixel as a fraction of the
            value range. Defaults to `(0, 1/255, 2/255, 4/255, 8/255)`.
        method: `"pgd"` or `"fgsm"`. Defaults to `"pgd"`.
        steps: PGD steps. Defaults to 10.
        step_size: PGD step. Defaults to None (`2.5 * epsilon / steps`).
        batch_size: images attacked together. Defaults to 64.
        seed: seed of PGD's random start. Defaults to 0.
        value_range: the range of the pixels of `x`. Defaults to `(0, 1)`.
        preprocess: maps images in `value_range` to the model's input. Defaults to None.
        predictor: a `ClassPredictor` of `model` (same `value_range` and `preprocess`)
            whose compiled pass to reuse. Defaults to None (a new one).

    Returns:
        float64 accuracy per epsilon.

    Raises:
        ValueError: for epsilons outside [0, 1], an unknown method, images the model does
            not take, or labels that are not one per image.
    """
    from keras_cnnvis.synthesis.adversarial import check_attack

    eps = np.atleast_1d(np.asarray(epsilons, np.float64))
    if eps.ndim != 1 or eps.size == 0 or not np.all((eps >= 0) & (eps <= 1)):
        raise ValueError(
            f"epsilons must be pixel changes in [0, 1] (fractions of the value range, e.g. "
            f"8 / 255); got {epsilons!r}."
        )
    check_attack(method, 0.0)
    batch_size = _check_batch_size(batch_size)
    x01, labels = _prepare(model, x, y, value_range)
    classes = _predictor(model, value_range, preprocess, predictor)
    clean = float(np.mean(classes(x01) == labels))
    if np.any(eps > 0):
        classes.check_classes(labels, x01.shape[1:])
    attack = classes.attack(x01.shape[1:])
    out = np.zeros(len(eps))
    for i, epsilon in enumerate(eps):
        if epsilon == 0:
            out[i] = clean
            continue
        attacked = attack(
            x01,
            labels,
            float(epsilon),
            method=method,
            steps=steps,
            step_size=step_size,
            seed=seed,
            batch_size=batch_size,
        )
        out[i] = float(np.mean(classes(attacked) == labels))
    return out


__all__ = [
    "ClassPredictor",
    "CorruptionAccuracy",
    "adversarial_accuracy",
    "corruption_accuracy",
]
