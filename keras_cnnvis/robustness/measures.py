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
    CORRUPTIONS,
    FAMILIES,
    SEVERITIES,
    apply,
    check_name,
    check_severity,
    check_value_range,
    to_unit,
)


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


def _input_fn(value_range: Sequence[float], preprocess: Callable | None) -> Callable:
    """Maps [0, 1] images (numpy or tensors) to the model's input."""
    low, high = check_value_range(value_range)

    def fn(x):
        if (low, high) != (0.0, 1.0):
            x = x * (high - low) + low
        return x if preprocess is None else preprocess(x)

    return fn


class ClassPredictor:
    """A classifier's predicted classes for image batches within `value_range`, through one
    compiled batched forward pass (traced once for every batch size) and the one
    predicted-class rule (`keras_cnnvis.inputs.predicted_classes`).

    Build one and pass it as `predictor=` to `corruption_accuracy` and
    `adversarial_accuracy` to pay the trace once (e.g. across the epochs of a callback):
    the pass calls the live model, so it sees the current weights.

    Example:

    ```python
    predictor = ClassPredictor(model)
    predictor(x_val)                   # int64 classes, one per image
    corruption_accuracy(model, x_val, y_val, predictor=predictor)
    ```

    Args:
        model: a Keras image classifier with one input and one output.
        batch_size: images per forward pass. Defaults to 64.
        value_range: the range of the pixels it is given. Defaults to `(0, 1)`.
        preprocess: maps images in `value_range` to the model's input. Defaults to None.

    Raises:
        ValueError: for a batch size that is not a positive integer or a bad value range.
    """

    def __init__(
        self,
        model,
        batch_size: int = 64,
        value_range: Sequence[float] = (0, 1),
        preprocess: Callable | None = None,
    ):
        from keras_cnnvis.model import BatchFunction, output_activation, predict_fn

        self.model = model
        self.batch_size = _check_batch_size(batch_size)
        self.value_range = check_value_range(value_range)
        self.preprocess = preprocess
        self.to_input = _input_fn(value_range, preprocess)
        self.activation = output_activation(model).name
        self.forward = BatchFunction(predict_fn(model))
        self._attacks: dict = {}

    def attack(self, shape: Sequence[int]):
        """The compiled attack of the model on [0, 1] images of `shape` through this
        predictor's input mapping, built once and kept (`synthesis.adversarial.Attack`)."""
        from keras_cnnvis.synthesis.adversarial import Attack

        shape = tuple(int(s) for s in shape)
        if shape not in self._attacks:
            self._attacks[shape] = Attack(self.model, shape, self.to_input)
        return self._attacks[shape]

    def outputs(self, x01: np.ndarray) -> np.ndarray:
        """The model's float32 outputs for images in [0, 1] (mapped to `value_range`)."""
        out = []
        for start in range(0, len(x01), self.batch_size):
            batch = np.asarray(self.to_input(x01[start : start + self.batch_size]), np.float32)
            out.append(np.asarray(self.forward(batch), np.float32))
        return np.concatenate(out)

    def __call__(self, x01: np.ndarray) -> np.ndarray:
        """The predicted classes (int64) of images in [0, 1]."""
        from keras_cnnvis.inputs import predicted_classes

        return predicted_classes(self.outputs(x01), self.activation)

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


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}.")
    return int(batch_size)


def _predictor(model, batch_size, value_range, preprocess, predictor) -> ClassPredictor:
    if predictor is None:
        return ClassPredictor(model, batch_size, value_range, preprocess)
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

    The images are corrupted a batch at a time (never all corruptions in memory) and run
    through one compiled forward pass; classes follow `keras_cnnvis.inputs.
    predicted_classes` (softmax or logits, one sigmoid or logit unit). The corruption of
    the batch starting at image `i` draws from the seed `(seed, corruption, severity, i)`:
    the same arguments give the same figures.

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
        batch_size: images per corruption call and forward pass. Defaults to 64.
        seed: seed of the random corruptions. Defaults to 0.
        value_range: the range of the pixels of `x`. Defaults to `(0, 1)`.
        preprocess: maps images in `value_range` to the model's input (e.g.
            `keras.applications.resnet50.preprocess_input`). Defaults to None.
        predictor: a `ClassPredictor` of `model` (same `value_range` and `preprocess`)
            whose compiled pass to reuse. Defaults to None (a new one, traced once).

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
    classes = _predictor(model, batch_size, value_range, preprocess, predictor)
    clean = float(np.mean(classes(x01) == labels))
    accuracy = np.zeros((len(names), len(levels)))
    for i, name in enumerate(names):
        for j, severity in enumerate(levels):
            correct = 0
            for start in range(0, len(x01), batch_size):
                rng = np.random.default_rng([seed, CORRUPTIONS.index(name), severity, start])
                chunk = apply(x01[start : start + batch_size], name, severity, rng)
                correct += int(np.sum(classes(chunk) == labels[start : start + batch_size]))
            accuracy[i, j] = correct / len(x01)
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
    from keras_cnnvis.synthesis._checks import check_classes
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
    classes = _predictor(model, batch_size, value_range, preprocess, predictor)
    clean = float(np.mean(classes(x01) == labels))
    if np.any(eps > 0):
        check_classes(model, np.unique(labels), x01.shape[1:], classes.to_input)
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
