"""What a model's output is: its task (multi-class, binary, multi-label, regression, per-pixel
segmentation or dense regression), classes and final activation, read from the output's shape,
the last activation and the compiled loss; and a single-output view of a multi-output model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from keras_cnnvis.model.overrides import output_activation

TASKS = ("multiclass", "binary", "multilabel", "regression", "segmentation", "dense")
"""`dense` is a per-pixel output that is not classes (e.g. depth or denoising)."""

CLASS_TASKS = ("multiclass", "binary", "multilabel", "segmentation")

_CATEGORICAL = ("categorical", "kl_divergence", "kld", "poisson")
_BINARY = ("binary", "hinge", "dice", "tversky")
_REGRESSION = (
    "mse",
    "mae",
    "mape",
    "msle",
    "mean_squared",
    "mean_absolute",
    "huber",
    "log_cosh",
    "logcosh",
    "cosine_similarity",
)


@dataclass(frozen=True)
class Head:
    """A model's output, as the monitors need to know it.

    Attributes:
        task: one of `TASKS`.
        n_classes: the number of classes (2 for one binary unit), or None without classes.
        activation: the final activation's name (`"softmax"`, `"sigmoid"`, `"linear"`, ...)
            or None when it cannot be told.
        output: the index of the explained output among the model's outputs.
        shape: the output's shape without the batch axis (None entries when free).
        loss: the name of the compiled loss of that output, or None.
    """

    task: str
    n_classes: int | None
    activation: str | None
    output: int = 0
    shape: tuple = ()
    loss: str | None = None

    @property
    def has_classes(self) -> bool:
        """Whether the output scores classes (per example or per pixel)."""
        return self.task in CLASS_TASKS

    @property
    def dense(self) -> bool:
        """Whether the output is a map (per-pixel), not one row per example."""
        return self.task in ("segmentation", "dense")

    def describe(self) -> str:
        """One line for messages, e.g. `"binary classifier (one sigmoid unit)"`."""
        unit = f"{self.activation or 'unknown'} output of shape {self.shape}"
        names = {
            "multiclass": f"{self.n_classes}-class classifier",
            "binary": "binary classifier",
            "multilabel": f"multi-label classifier ({self.n_classes} labels)",
            "regression": "regression head",
            "segmentation": f"per-pixel classifier ({self.n_classes} classes)",
            "dense": "per-pixel regression head",
        }
        return f"{names[self.task]} ({unit})"


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    if isinstance(loss, str):
        return loss.lower()
    fn = getattr(loss, "fn", None)
    name = getattr(fn, "__name__", None) or type(loss).__name__
    if name in ("function", "LossFunctionWrapper"):
        name = getattr(loss, "__name__", name)
    # CamelCase class names to snake case: BinaryCrossentropy -> binary_crossentropy
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.lower()


def _output_loss(model: keras.Model, index: int, n_outputs: int) -> str | None:
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        names = list(getattr(model, "output_names", None) or [])
        key = names[index] if index < len(names) else None
        return _loss_name(loss.get(key)) if key is not None else None
    if isinstance(loss, (list, tuple)):
        return _loss_name(loss[index]) if index < len(loss) else None
    return _loss_name(loss)


def _is(loss: str | None, kinds: tuple) -> bool:
    return loss is not None and any(k in loss for k in kinds)


def output_count(model: keras.Model) -> int:
    """How many outputs the model has (1 when it cannot tell)."""
    try:
        return max(1, len(model.outputs))
    except (AttributeError, TypeError, ValueError):
        return 1


def model_head(model: keras.Model, output: int = 0) -> Head:
    """Reads what a model's output is.

    The task comes from the output's shape, its final activation and, where those leave
    it open, the compiled loss: one unit is a binary classifier (a sigmoid probability or a
    logit trained with binary cross-entropy) unless the loss is a regression loss; several
    units are classes (softmax or logits), independent labels (sigmoid, or logits with a
    binary cross-entropy) or a regression; an output with height and width is per-pixel
    classes (segmentation) or, with a regression loss, a dense regression.

    Example:

    ```python
    model_head(model).task        # "binary" for the keras.io from-scratch classifier
    ```

    Args:
        model: the model.
        output: the index of the output to read. Defaults to 0.

    Returns:
        A `Head`.

    Raises:
        ValueError: for an output index the model does not have.
    """
    n_outputs = output_count(model)
    if not 0 <= int(output) < n_outputs:
        raise ValueError(
            f"Model '{model.name}' has {n_outputs} output(s); output={output} does not exist. "
            f"Use an index 0..{n_outputs - 1}."
        )
    try:
        shape = tuple(model.outputs[output].shape[1:])
    except (AttributeError, TypeError, ValueError, IndexError):
        shape = ()
    try:  # the chosen output's own final activation (a multi-output model has none)
        activation = output_activation(output_view(model, output)).name
    except ValueError:  # a subclassed multi-output model: no graph to cut
        activation = None
    loss = _output_loss(model, int(output), n_outputs)
    regression = _is(loss, _REGRESSION)
    binary_loss = _is(loss, _BINARY) and not _is(loss, _CATEGORICAL)
    units = shape[-1] if shape else None
    if len(shape) >= 2:  # a map: (H, W, C) or (H, W)
        if regression:
            return Head("dense", None, activation, output, shape, loss)
        n = 2 if len(shape) == 2 or units == 1 else units
        return Head("segmentation", n, activation, output, shape, loss)
    if units == 1:
        task = "regression" if regression and activation != "sigmoid" else "binary"
        return Head(task, 2 if task == "binary" else None, activation, output, shape, loss)
    if regression:
        return Head("regression", None, activation, output, shape, loss)
    if activation == "sigmoid" or (activation != "softmax" and binary_loss):
        return Head("multilabel", units, activation, output, shape, loss)
    return Head("multiclass", units, activation, output, shape, loss)


def output_view(model: keras.Model, output: int = 0) -> keras.Model:
    """A single-output view of a multi-output Functional model, sharing its layers.

    The view holds no weights of its own: it computes `model`'s output `output` with the
    same layer objects, so it sees every training update.

    Raises:
        ValueError: for a model whose outputs cannot be split (subclassed).
    """
    if output_count(model) == 1:
        return model
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        return keras.Model(inputs, model.outputs[output], name=f"{model.name}_output{output}")
    except Exception as error:  # subclassed models have no graph to cut
        raise ValueError(
            f"Model '{model.name}' has several outputs and no graph to take output {output} "
            f"from ({type(error).__name__}); build it as a Functional model, or wrap it in "
            "one with a single output."
        ) from None
