"""RobustnessCallback: accuracy under common corruptions (Hendrycks & Dietterich 2019) and PGD
attacks on a fixed seeded validation subset every few epochs, the corruption x severity heatmap,
and corrupted probes with their predictions. Measures in `keras_cnnvis.robustness`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.rendering.robustness import render_heatmap
from keras_cnnvis.robustness import (
    BENCHMARK,
    CORRUPTIONS,
    ClassPredictor,
    adversarial_accuracy,
    corrupt,
    corruption_accuracy,
    corruption_error,
)
from keras_cnnvis.robustness.corruptions import check_name, check_severity, to_unit

DEFAULT_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "fog", "contrast", "jpeg_compression")
"""One corruption of each family (noise, blur, weather, digital) and JPEG."""

_NAMED = {"all": CORRUPTIONS, "benchmark": BENCHMARK}
MAX_READ = 10000
"""Validation examples read at most (from a tf.data.Dataset) before the subset is drawn."""


def epsilon_tag(epsilon: float) -> str:
    """The tag part of an attack strength, in 1/255 steps: 2/255 -> `"eps_2_255"`."""
    return f"eps_{float(epsilon) * 255:.3g}_255"


def infer_value_range(x: np.ndarray) -> tuple[float, float]:
    """`(0, 1)` for pixels within [0, 1], `(0, 255)` for pixels within [0, 255].

    Raises:
        ValueError: for pixels outside both (pass `value_range` then).
    """
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= 0 and hi <= 1:
        return (0.0, 1.0)
    if lo >= 0 and hi <= 255:
        return (0.0, 255.0)
    raise ValueError(
        f"The validation images range over [{lo:g}, {hi:g}]; the corruptions need to know "
        "the pixel range: pass value_range=(low, high) and a preprocess mapping it to the "
        "model's input."
    )


def pixel_range_reason(x: np.ndarray | None) -> str | None:
    """Why images in this range cannot be corrupted without a `value_range`, or None."""
    if x is None:
        return None
    try:
        infer_value_range(x)
    except ValueError:
        return (
            f"the validation images range over [{float(np.min(x)):g}, {float(np.max(x)):g}], "
            "neither [0, 1] nor 0..255: use RobustnessCallback with value_range= and "
            "preprocess="
        )
    return None


def _count(value: Any, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)


class RobustnessCallback(MonitorCallback):
    """Logs accuracy under common corruptions and adversarial attack on validation data.

    Every `every_n_epochs` epochs, on a fixed class-balanced subset of `n_examples`
    validation images (seeded: the same images and the same corruption noise at every
    record, so records differ only by the model), writes into `<log_dir>/cnnvis`:

    - scalars `robustness/clean_accuracy`, `robustness/corrupted_accuracy` (the mean over
      every corruption and severity), `robustness/accuracy/<corruption>` (mean over the
      severities), `robustness/mce` and `robustness/pgd_accuracy/eps_<k>_255` per epsilon;
    - the heatmap image `robustness/heatmap` (corruptions x severities, clean column first)
      and its record `json/robustness/heatmap` (the table, per-family curves, CE, PGD);
    - `robustness/examples`: the probe images clean and under each corruption and
      severity, with the record `json/robustness/examples` of their predictions.

    `robustness/mce` is the plain mean corruption error (Hendrycks & Dietterich 2019)
    against this callback's first record: `CE_c = sum_s E_s,c / sum_s E^first_s,c`,
    averaged over the corruptions; 1.0 at the first record, falling as the model makes
    fewer corruption errors. The relative mCE (errors above the clean error) is not
    logged: against a near-chance first record its denominator is about 0.

    Cost per record: `n_examples * (1 + corruptions x severities)` images through one
    compiled forward pass plus the corruptions themselves, and `pgd_steps` forward and
    backward passes of `n_adversarial` images per epsilon through one compiled attack step
    (both traced once, at the first record). At the defaults (200 images, 5 corruptions x
    3 severities, PGD at 2/255 and 8/255 on 64 images with 5 steps) a record of the demo
    CNN takes a little less than one demo training epoch of 1600 images (0.87x on 2 busy
    CPU cores, a third of it the attack); `corruptions="all"` with the five severities
    about 2.7 epochs (`python benchmarks/corruptions.py --monitor [--all]`).

    Example:

    ```python
    cb = RobustnessCallback("runs/exp1", (x_val, y_val), every_n_epochs=5)
    model.fit(x, y, epochs=20, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        validation_data: `(images, labels)` arrays (images `(N, H, W, C)` with C 1 or 3,
            labels as class indices or one-hot rows) or a tf.data.Dataset of such batches
            (at most `MAX_READ` examples are read).
        corruptions: names from `keras_cnnvis.robustness.CORRUPTIONS`, `"benchmark"` (the
            15) or `"all"` (19). Defaults to `DEFAULT_CORRUPTIONS` (5).
        severities: severities from 1 to 5. Defaults to `(1, 3, 5)`.
        n_examples: size of the class-balanced validation subset. Defaults to 200.
        epsilons: PGD strengths (per-pixel change as a fraction of the value range);
            `()` turns the attack off. Defaults to `(2/255, 8/255)`.
        n_adversarial: images of the subset attacked (class-balanced). Defaults to 64.
        pgd_steps: PGD steps per attack. Defaults to 5.
        n_probes: images shown clean and corrupted with their predictions (0: none).
            Defaults to 4.
        probe: images to show (`n_probes` of them, one per class in turn when
            `probe_labels` are given). Defaults to None (`n_probes` of the subset, one per
            class in turn).
        probe_labels: their classes. Defaults to None.
        class_names: one name per class. Defaults to None.
        value_range: the range of the images' pixels. Defaults to None (`(0, 1)` for
            pixels within [0, 1], else `(0, 255)`).
        preprocess: maps images in `value_range` to the model's input. Defaults to None.
        batch_size: images per corruption call (the forward passes take as many as the
            model's byte budget allows, `model.compiled.batch_size_for`). Defaults to 64.
        seed: seed of the subset, the corruption noise and PGD. Defaults to 0.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at construction for data that is not labelled images, unknown
            corruptions, severities outside 1-5, epsilons outside [0, 1] or counts that
            are not integers; at `on_train_begin` (before any epoch) for images the model
            does not take, outputs that are not class scores, labels outside the model's
            classes or too few class names.
    """

    def __init__(
        self,
        log_dir: str,
        validation_data: Any,
        corruptions: Sequence[str] | str = DEFAULT_CORRUPTIONS,
        severities: Sequence[int] = (1, 3, 5),
        n_examples: int = 200,
        epsilons: Sequence[float] = (2 / 255, 8 / 255),
        n_adversarial: int = 64,
        pgd_steps: int = 5,
        n_probes: int = 4,
        probe: np.ndarray | None = None,
        probe_labels: Any = None,
        class_names: Sequence[str] | None = None,
        value_range: Sequence[float] | None = None,
        preprocess: Callable | None = None,
        batch_size: int = 64,
        seed: int = 0,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        x, y = inputs.labelled_arrays(validation_data, MAX_READ)
        if y is None:
            raise ValueError(
                "validation_data has no labels; accuracy under corruption needs (images, "
                "labels)."
            )
        x = inputs.check_images(x, None, "validation images")
        y = inputs.class_labels(y, len(x))
        names = _NAMED.get(corruptions) if isinstance(corruptions, str) else corruptions
        if names is None:
            raise ValueError(
                f"corruptions must be names from CORRUPTIONS, 'benchmark' or 'all'; got "
                f"{corruptions!r}."
            )
        self.corruptions = tuple(check_name(n) for n in names)
        self.severities = tuple(check_severity(s) for s in severities)
        if not self.corruptions or not self.severities:
            raise ValueError("Pass at least one corruption and one severity.")
        eps = np.asarray(epsilons, np.float64).reshape(-1)
        if not np.all((eps >= 0) & (eps <= 1)):
            raise ValueError(f"epsilons must be pixel changes in [0, 1]; got {epsilons!r}.")
        self.epsilons = tuple(float(e) for e in eps if e > 0)
        self.n_adversarial = _count(n_adversarial, "n_adversarial")
        self.pgd_steps = _count(pgd_steps, "pgd_steps", 1)
        self.batch_size = _count(batch_size, "batch_size", 1)
        self.seed = _count(seed, "seed")
        self.value_range = infer_value_range(x) if value_range is None else tuple(value_range)
        to_unit(x[:1], self.value_range, "validation images")  # range and channels, now
        self.preprocess = preprocess
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        picked = inputs.balanced_indices(y, _count(n_examples, "n_examples", 1), seed=self.seed)
        self.x, self.y = x[picked], y[picked]
        to_unit(self.x, self.value_range, "validation images")
        attacked = inputs.balanced_indices(self.y, self.n_adversarial, seed=self.seed)
        self.adversarial_index = attacked if self.epsilons else attacked[:0]
        self._probes(probe, probe_labels, _count(n_probes, "n_probes"))
        self._predictor: ClassPredictor | None = None
        self._baseline = None  # (step, CorruptionAccuracy) of the first record
        self.table = self.adversarial = None
        self.seconds: dict = {}

    def _probes(self, probe, probe_labels, n: int) -> None:
        """The example images (in [0, 1]) and their labels; the corrupted tiles are made
        once here, seeded, so every record shows the same pictures."""
        if probe is not None:
            images = inputs.check_images(probe, None, "probe images")
            labels = (
                None if probe_labels is None else inputs.class_labels(probe_labels, len(images))
            )
            index = inputs.balanced_indices(labels, n, sort=False)  # classes in turn
            images, labels = images[index], None if labels is None else labels[index]
        else:
            index = inputs.balanced_indices(self.y, n, sort=False)  # classes in turn
            images, labels = self.x[index], self.y[index]
        self.probe_labels = labels
        if not n:
            self.probe = self.tiles = images[:0]
            return
        self.probe = to_unit(images, self.value_range, "probe images")
        tiles = [self.probe]
        for name in self.corruptions:
            for severity in self.severities:
                seed = [self.seed, CORRUPTIONS.index(name), severity]
                tiles.append(corrupt(self.probe, name, severity, seed=seed))
        self.tiles = np.concatenate(tiles)

    def setup(self) -> None:
        inputs.check_image_shape(self.x, self.model, "validation images")
        if len(self.probe):
            inputs.check_image_shape(self.probe, self.model, "probe images")
        if self._predictor is None or self._predictor.model is not self.model:
            # Forward batches from the model's byte budget; `batch_size` sets the corruption
            # chunks (and with them the seeds).
            self._predictor = ClassPredictor(self.model, None, self.value_range, self.preprocess)
            self._baseline = None
        outputs = self._predictor.outputs(to_unit(self.x[:1], self.value_range))
        inputs.predicted_classes(outputs, self._predictor.activation)  # class scores?
        n = inputs.n_classes_of(outputs)
        for labels in (self.y, self.probe_labels):
            inputs.check_class_range(labels, n, self.model.name)
        if self.class_names is not None and len(self.class_names) < n:
            raise ValueError(
                f"{len(self.class_names)} class names were given for {n} classes; pass one "
                "name per class."
            )

    def log(self, step: int, logs: dict | None = None):
        start = time.perf_counter()
        common = dict(
            batch_size=self.batch_size,
            seed=self.seed,
            value_range=self.value_range,
            preprocess=self.preprocess,
            predictor=self._predictor,
        )
        table = corruption_accuracy(
            self.model, self.x, self.y, self.corruptions, self.severities, **common
        )
        corrupted = time.perf_counter()
        if self._baseline is None:
            self._baseline = (step, table)
        error = corruption_error(table, self._baseline[1])
        adversarial = None
        if len(self.adversarial_index):
            idx = self.adversarial_index
            accuracy = adversarial_accuracy(
                self.model,
                self.x[idx],
                self.y[idx],
                (0.0,) + self.epsilons,
                steps=self.pgd_steps,
                **common,
            )
            adversarial = {
                "method": "pgd",
                "steps": self.pgd_steps,
                "count": len(idx),
                "epsilons": [0.0, *self.epsilons],
                "accuracy": accuracy,
            }
        self.table, self.adversarial = table, adversarial  # the last record's figures
        self.seconds = {  # of the last record, for the benchmark and the page
            "corruptions": round(corrupted - start, 3),
            "attack": round(time.perf_counter() - corrupted, 3),
        }
        examples = self._example_predictions() if len(self.probe) else None
        seconds, baseline = self.seconds, self._baseline[0]
        # The heatmap, the examples and every write need no model: the background worker.
        return lambda: self._record(step, table, error, adversarial, examples, seconds, baseline)

    def _record(self, step, table, error, adversarial, examples, seconds, baseline) -> None:
        self._write_scalars(step, table, error, adversarial)
        title = (
            f"step {step}: clean {table.clean:.3f}, corrupted {table.mean:.3f} (n={table.count})"
        )
        heat = render_heatmap(
            table.accuracy, table.corruptions, table.severities, table.clean, title
        )
        self.writer.images("robustness/heatmap", heat, step)
        self.writer.json(
            "json/robustness/heatmap",
            {
                "corruptions": list(table.corruptions),
                "severities": list(table.severities),
                "accuracy": table.accuracy,
                "clean": table.clean,
                "mean": table.mean,
                "count": table.count,
                "by_severity": table.by_severity(),
                "families": table.by_family(),
                "mce": error.mce,
                "ce": error.ce,
                "baseline_step": baseline,
                "adversarial": adversarial,
                "seed": self.seed,
                "seconds": seconds,
            },
            step,
            kind="robustness",
        )
        if examples is not None:
            self._write_examples(step, *examples)

    def _write_scalars(self, step, table, error, adversarial) -> None:
        self.writer.scalar("robustness/clean_accuracy", table.clean, step)
        self.writer.scalar("robustness/corrupted_accuracy", table.mean, step)
        for name, row in zip(table.corruptions, table.accuracy):
            self.writer.scalar(f"robustness/accuracy/{name}", float(row.mean()), step)
        if np.isfinite(error.mce):
            self.writer.scalar("robustness/mce", error.mce, step)
        if adversarial is not None:
            for eps, acc in zip(adversarial["epsilons"][1:], adversarial["accuracy"][1:]):
                self.writer.scalar(f"robustness/pgd_accuracy/{epsilon_tag(eps)}", acc, step)

    def _example_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """The predicted classes of the probes clean and corrupted, and their scores."""
        predictor = self._predictor
        outputs = predictor.outputs(self.tiles)
        predicted = inputs.predicted_classes(outputs, predictor.activation)
        return predicted, inputs.class_scores(outputs, predicted, predictor.activation)

    def _write_examples(self, step: int, predicted: np.ndarray, scores: np.ndarray) -> None:
        """The probes clean, then under each corruption and severity, with predictions."""
        shape = (1 + len(self.corruptions) * len(self.severities), len(self.probe))
        self.writer.images("robustness/examples", self.tiles, step)
        labels = self.probe_labels
        self.writer.json(
            "json/robustness/examples",
            {
                "layout": "clean, then each corruption and severity; probes within",
                "n_probes": len(self.probe),
                "corruptions": list(self.corruptions),
                "severities": list(self.severities),
                "labels": None if labels is None else labels.tolist(),
                "class_names": self.class_names,
                "predictions": predicted.reshape(shape).tolist(),
                "scores": np.round(scores.astype(np.float64), 4).reshape(shape).tolist(),
            },
            step,
            kind="robustness",
        )


__all__ = [
    "DEFAULT_CORRUPTIONS",
    "RobustnessCallback",
    "epsilon_tag",
    "infer_value_range",
    "pixel_range_reason",
]
