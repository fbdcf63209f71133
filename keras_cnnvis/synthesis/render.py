"""The render loop: optimises an image parameterisation for an objective with one compiled
`tf.function` step (forward, backward, update, transforms, regularisers), seeded, with a
progress bar. Every synthesis recipe runs through it.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model import (
    capture_outputs,
    check_image_model,
    find_layers,
    instance_function,
    model_overrides,
    output_activation,
    predict_fn,
    value_and_gradients,
)
from keras_cnnvis.synthesis import param as param_lib
from keras_cnnvis.synthesis import transforms as transforms_lib
from keras_cnnvis.synthesis.objectives import Context, Objective, _key, as_objective
from keras_cnnvis.synthesis.regularizers import Regularizer

OPTIMIZERS = ("adam", "sgd", "normalized", "sign")


@dataclass
class RenderResult:
    """The outcome of `render`.

    Attributes:
        images: float32 `(N, H, W, C)` in [0, 1] (the parameterised image, untransformed).
        values: float32 `(steps,)` objective value at each step (before its update).
    """

    images: np.ndarray
    values: np.ndarray


# -- model plumbing --------------------------------------------------------------------------
_FLEXIBLE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def flexible_model(model: keras.Model) -> keras.Model | None:
    """A version of a fixed-size Functional model that takes any image size, sharing its
    layers (and so its weights); None if the model cannot run at other sizes (e.g. it
    flattens into a dense layer). Models whose input size is already free are returned
    as they are.
    """
    shape = check_image_model(model)
    if shape[0] is None and shape[1] is None:
        return model
    if model in _FLEXIBLE:
        return _FLEXIBLE[model]
    flex = None
    try:
        inp = keras.Input((None, None, shape[2]))
        flex = keras.models.clone_model(model, input_tensors=inp, clone_function=lambda l: l)
        probe = np.zeros(
            (1, max(8, (shape[0] or 8) // 2 + 3), max(8, (shape[1] or 8) // 2 + 5), shape[2]),
            np.float32,
        )
        flex(probe, training=False)
    except Exception:  # Flatten + Dense, subclassed or otherwise size-bound models
        flex = None
    _FLEXIBLE[model] = flex
    return flex


def forward(
    model: keras.Model,
    objective: Objective,
    image: tf.Tensor,
    model_input: tf.Tensor,
    preprocess: Callable | None = None,
) -> tf.Tensor:
    """Calls the model on `model_input` and evaluates the objective (traceable)."""
    layers = objective.model_layers
    x = preprocess(model_input) if preprocess is not None else model_input
    with contextlib.ExitStack() as stack:
        cap = stack.enter_context(capture_outputs(model, layers)) if layers else None
        stack.enter_context(model_overrides(model, logits=objective.needs_logits))
        out = predict_fn(model)(x)
    acts = {}
    if cap is not None:
        for ref, value in zip(layers, cap.ordered()):
            acts[_key(ref)] = value
    logits = output = tf.cast(out, tf.float32)
    squasher = output_activation(model) if objective.needs_logits else None
    if squasher is not None and squasher.squashes:  # made linear by model_overrides
        output = squasher.fn(logits)
    return objective(Context(image, model_input, acts, logits, output))


def objective_value(
    model: keras.Model, objective: Any, images: Any, preprocess: Callable | None = None
) -> float:
    """Evaluates an objective on fixed images (no transforms), e.g. before and after.

    Example:

    ```python
    before = objective_value(model, obj, start)
    after = objective_value(model, obj, result.images)
    ```

    Args:
        model: the model.
        objective: an `Objective`.
        images: `(N, H, W, C)` or `(H, W, C)` in [0, 1].
        preprocess: maps [0, 1] images to the model's input range. Defaults to None.

    Returns:
        The objective's value (a float).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[None]
    model, target = _model_for(model, images.shape[1:3])
    x = tf.convert_to_tensor(images)
    xin = tf.image.resize(x, target) if target is not None else x
    return float(forward(model, as_objective(objective), x, xin, preprocess))


def _model_for(model: keras.Model, size: Sequence[int]):
    """(model to call, size to resize inputs to or None) for images of `size`."""
    shape = check_image_model(model)
    fixed = shape[0] is not None and shape[1] is not None
    if not fixed or tuple(int(s) for s in size) == (shape[0], shape[1]):
        return model, ((shape[0], shape[1]) if fixed else None)
    flex = flexible_model(model)
    if flex is not None:
        return flex, None
    return model, (shape[0], shape[1])


def image_size(model: keras.Model, size: Any = None) -> tuple[int, int, int]:
    """The `(height, width, channels)` to render at: `size` (int or `(h, w)`) or the
    model's own input size.

    Raises:
        ValueError: if the model's input size is free and no `size` is given.
    """
    shape = check_image_model(model)
    channels = int(shape[2]) if shape[2] is not None else 3
    if size is None:
        if shape[0] is None or shape[1] is None:
            raise ValueError(
                f"Model '{model.name}' takes images of any size; pass size=(height, width)."
            )
        return int(shape[0]), int(shape[1]), channels
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size is an int or (height, width); got {size}.")
    return size[0], size[1], channels


# -- the loop --------------------------------------------------------------------------------
def _resolve_transforms(transforms: Any, size: int):
    if transforms is None:
        return None
    if isinstance(transforms, str):
        if transforms != "default":
            raise ValueError(
                f"transforms is 'default', None, a transform or a list; got {transforms!r}."
            )
        return transforms_lib.standard_transforms(size)
    if isinstance(transforms, (list, tuple)):
        return transforms_lib.compose(*transforms) if transforms else None
    if callable(transforms):
        return transforms
    raise TypeError(
        f"transforms must be 'default', None, a callable or a list; got {transforms!r}."
    )


class Renderer:
    """A compiled optimisation loop for one model, objective and image batch.

    `step()` is one `tf.function` call: image from the parameterisation, random
    transforms, forward pass, objective, gradient, optimiser update and regularisers. It is
    traced once and reused for every step (and across `reset()`), so a step costs about a
    compiled forward + backward pass. The objective is maximised.

    Example:

    ```python
    renderer = Renderer(model, channel("conv3", 2), shape=(64, 64, 3))
    result = renderer.run(128)
    ```

    Args:
        model: a Keras image model (single input, channels-last).
        objective: an `Objective` (or a number/callable turned into one).
        shape: `(height, width, channels)` of the rendered images.
        batch: images optimised together. Defaults to 1.
        param: `"fourier"`, `"pixel"`, a factory `fn(shape, batch=, init=, seed=)`, or a
            `(variables, image_fn)` pair. Defaults to `"fourier"`.
        init: start image(s) in [0, 1] for the parameterisation. Defaults to None (noise).
        transforms: `"default"` (Lucid's standard set scaled to the image), None, a
            transform or a list of them. Defaults to `"default"`.
        optimizer: `"adam"`, `"sgd"` (plain ascent), `"normalized"` (ascent by
            gradient / mean |gradient|, as in DeepDream) or `"sign"` (as in FGSM/PGD).
            Defaults to `"adam"`.
        learning_rate: the step size. Defaults to 0.05.
        regularizers: `Regularizer` hooks (see `regularizers`). Defaults to None.
        preprocess: maps [0, 1] images to the model's input range (e.g. for
            keras.applications models). Defaults to None.
        seed: seeds the start image and the transforms. Defaults to 0.

    Raises:
        ValueError: for a model that is not an image model, an unknown optimizer, or an
            objective that does not depend on the image.
    """

    def __init__(
        self,
        model: keras.Model,
        objective: Any,
        shape: Sequence[int],
        batch: int = 1,
        param: Any = "fourier",
        init: Any = None,
        transforms: Any = "default",
        optimizer: str = "adam",
        learning_rate: float = 0.05,
        regularizers: Sequence[Regularizer] | None = None,
        preprocess: Callable | None = None,
        seed: int = 0,
    ):
        check_image_model(model)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}.")
        self.objective = as_objective(objective)
        self.shape = tuple(int(s) for s in shape)
        self.batch = int(batch)
        self.seed = int(seed)
        self.model, self.resize_to = _model_for(model, self.shape[:2])
        find_layers(self.model, self.objective.model_layers)  # unknown layer: clear error now
        self._param_spec = param
        self.variables, self.image_fn = param_lib.make_param(
            param, self.shape, batch=self.batch, init=init, seed=self.seed
        )
        self._initial = [v.numpy() for v in self.variables]
        self.transform = _resolve_transforms(transforms, min(self.shape[:2]))
        self.optimizer = optimizer
        self._learning_rate = tf.Variable(float(learning_rate), trainable=False)
        self.regularizers = list(regularizers or [])
        for reg in self.regularizers:
            reg.check(self.variables)
        self.preprocess = preprocess
        self.rng = tf.random.Generator.from_seed(self.seed)
        self.step_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self._v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.step_fn = instance_function(self._step)

    @property
    def learning_rate(self) -> float:
        """The step size; set it between runs (it is read by the compiled step, no retrace)."""
        return float(self._learning_rate.numpy())

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate.assign(float(value))

    def reset(self, init: Any = None) -> None:
        """Restores the start image (or sets a new one), optimiser state and seed."""
        if init is not None:
            if not isinstance(self._param_spec, str) and isinstance(self._param_spec, tuple):
                raise ValueError(
                    "reset(init=...) needs a named parameterisation or a factory, not a "
                    "ready (variables, image_fn) pair."
                )
            fresh, _ = param_lib.make_param(
                self._param_spec, self.shape, self.batch, init, self.seed
            )
            values = [v.numpy() for v in fresh]
        else:
            values = self._initial
        for var, value in zip(self.variables, values):
            var.assign(value)
        for slot in self._m + self._v:
            slot.assign(tf.zeros_like(slot))
        self.step_count.assign(0)
        self.rng.reset_from_seed(self.seed)

    def images(self) -> np.ndarray:
        """The current image batch, float32 `(N, H, W, C)` in [0, 1]."""
        return np.asarray(self.image_fn(), np.float32)

    def model_input(self, images: tf.Tensor) -> tf.Tensor:
        """Transforms (random) and resizes an image batch as the step does."""
        x = self.transform(images, self.rng) if self.transform is not None else images
        if self.resize_to is not None and tuple(x.shape[1:3]) != tuple(self.resize_to):
            x = tf.image.resize(x, self.resize_to)
        return x

    def _update(self, i: int, var: tf.Variable, g: tf.Tensor) -> tf.Tensor:
        lr = self._learning_rate
        if self.optimizer == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            t = tf.cast(self.step_count + 1, tf.float32)
            m = self._m[i].assign(b1 * self._m[i] + (1 - b1) * g)
            v = self._v[i].assign(b2 * self._v[i] + (1 - b2) * g * g)
            m_hat = m / (1 - tf.pow(b1, t))
            v_hat = v / (1 - tf.pow(b2, t))
            return var + lr * m_hat / (tf.sqrt(v_hat) + eps)
        if self.optimizer == "normalized":
            return var + lr * g / (tf.reduce_mean(tf.abs(g)) + 1e-8)
        if self.optimizer == "sign":
            return var + lr * tf.sign(g)
        return var + lr * g

    def _step(self) -> tf.Tensor:
        def value_fn():
            img = self.image_fn()
            return forward(self.model, self.objective, img, self.model_input(img), self.preprocess)

        value, grads = value_and_gradients(value_fn, self.variables)
        for i, (var, g) in enumerate(zip(self.variables, grads)):
            if g is None:
                raise ValueError(
                    f"The objective {self.objective.name} does not depend on the image."
                )
            for reg in self.regularizers:
                if reg.gradient is not None:
                    g = reg.gradient(g, var, self.step_count)
            var.assign(self._update(i, var, g))
            for reg in self.regularizers:
                if reg.update is not None:
                    var.assign(reg.update(var, g, self.step_count))
        self.step_count.assign_add(1)
        return value

    def run(self, steps: int, progress: bool = False) -> RenderResult:
        """Runs `steps` compiled steps and returns the images and the objective trace.

        Args:
            steps: the number of optimisation steps (>= 0).
            progress: show a Keras progress bar. Defaults to False.

        Returns:
            A `RenderResult`.
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0; got {steps}.")
        bar = keras.utils.Progbar(steps, unit_name="step") if progress and steps else None
        values = np.zeros(steps, np.float32)
        for i in range(steps):
            values[i] = float(self.step_fn())
            if bar is not None:
                bar.update(i + 1, values=[("objective", values[i])])
        return RenderResult(self.images(), values)


def render(
    model: keras.Model,
    objective: Any,
    size: Any = None,
    batch: int = 1,
    steps: int = 128,
    param: Any = "fourier",
    init: Any = None,
    transforms: Any = "default",
    optimizer: str = "adam",
    learning_rate: float = 0.05,
    regularizers: Sequence[Regularizer] | None = None,
    preprocess: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> RenderResult:
    """Optimises an image to maximise an objective (the one render loop).

    Example:

    ```python
    from keras_cnnvis.synthesis import objectives as obj
    result = render(model, obj.channel("conv3", 5) - 1e-2 * obj.total_variation(), steps=128)
    image = result.images[0]
    ```

    Args:
        model: a Keras image model.
        objective: an `Objective`.
        size: image size, an int or `(height, width)`. Defaults to None (the model's).
        batch: images optimised together. Defaults to 1.
        steps: optimisation steps. Defaults to 128.
        param: `"fourier"`, `"pixel"`, a factory or `(variables, image_fn)`.
            Defaults to `"fourier"`.
        init: start image(s) in [0, 1]. Defaults to None (noise).
        transforms: `"default"`, None, a transform or a list. Defaults to `"default"`.
        optimizer: `"adam"`, `"sgd"`, `"normalized"` or `"sign"`. Defaults to `"adam"`.
        learning_rate: the step size. Defaults to 0.05.
        regularizers: Yosinski-style step hooks. Defaults to None.
        preprocess: maps [0, 1] images to the model's input range. Defaults to None.
        seed: random seed. Defaults to 0.
        progress: show a progress bar. Defaults to False.

    Returns:
        A `RenderResult` (`images`, `values`).

    Raises:
        ValueError: for a model that is not an image model, a free input size without
            `size`, an unknown layer, or bad options.
    """
    shape = image_size(model, size)
    renderer = Renderer(
        model,
        objective,
        shape,
        batch=batch,
        param=param,
        init=init,
        transforms=transforms,
        optimizer=optimizer,
        learning_rate=learning_rate,
        regularizers=regularizers,
        preprocess=preprocess,
        seed=seed,
    )
    return renderer.run(steps, progress=progress)
