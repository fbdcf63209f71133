"""Objectives for feature visualisation: small composable objects that score an image batch
(higher is better), combined with `+`, `-` and scalar `*` as in Lucid.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import tensorflow as tf

LOGITS = "logits"
"""The special layer reference of the model's pre-softmax output."""


class Context:
    """What an objective sees during one forward pass.

    Attributes:
        image: the parameterised image batch `(N, H, W, C)` in [0, 1], before transforms
            (regularisers such as total variation act on it).
        model_input: the transformed batch the model was called on (before `preprocess`).
        logits: the model's output before its final softmax/sigmoid (the output itself
            when the model has no such activation).
        output: the model's output.
    """

    def __init__(self, image, model_input, activations: dict, logits, output):
        self.image = image
        self.model_input = model_input
        self.activations = activations
        self.logits = logits
        self.output = output

    def __getitem__(self, layer: Any) -> tf.Tensor:
        if _key(layer) == LOGITS:
            return self.logits
        return self.activations[_key(layer)]


def _key(layer: Any) -> Any:
    return layer if isinstance(layer, (str, int)) else id(layer)


class Objective:
    """A differentiable score of an image batch, to be maximised by the render loop.

    Objectives add, subtract, negate and scale by numbers:
    `channel("conv3", 5) - 1e-3 * total_variation()` is again an `Objective`. The layers an
    objective reads are collected so the render loop captures exactly those.

    Example:

    ```python
    obj = channel("conv3", 5) + 0.5 * deepdream("conv2") - 0.01 * l2()
    result = render(model, obj, steps=64)
    ```

    Args:
        fn: `fn(context) -> scalar tensor`; see `Context`.
        layers: layer references the objective reads (names, paths, objects or
            `"logits"`). Defaults to `()`.
        name: a readable description. Defaults to `"objective"`.
    """

    def __init__(
        self, fn: Callable[[Context], tf.Tensor], layers: Iterable = (), name: str = "objective"
    ):
        self.fn = fn
        self.layers = tuple(layers)
        self.name = name

    def __call__(self, context: Context) -> tf.Tensor:
        return tf.cast(self.fn(context), tf.float32)

    @property
    def needs_logits(self) -> bool:
        return any(_key(layer) == LOGITS for layer in self.layers)

    @property
    def model_layers(self) -> list:
        """The layer references to capture (without `"logits"`), duplicates removed."""
        seen, out = set(), []
        for layer in self.layers:
            if _key(layer) != LOGITS and _key(layer) not in seen:
                seen.add(_key(layer))
                out.append(layer)
        return out

    def __add__(self, other):
        other = as_objective(other)
        return Objective(
            lambda c: self(c) + other(c), self.layers + other.layers, f"{self.name} + {other.name}"
        )

    __radd__ = __add__  # so `sum([...])` works (0 + objective)

    def __neg__(self):
        return Objective(lambda c: -self(c), self.layers, f"-({self.name})")

    def __sub__(self, other):
        return self + (-as_objective(other))

    def __rsub__(self, other):
        return as_objective(other) + (-self)

    def __mul__(self, scalar):
        if isinstance(scalar, Objective):
            raise TypeError("Objectives combine with +, - and scalar *, not objective * objective.")
        scalar = float(scalar)
        return Objective(lambda c: scalar * self(c), self.layers, f"{scalar:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        return self * (1.0 / float(scalar))

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def as_objective(value: Any) -> Objective:
    """Turns an `Objective`, a number (a constant) or a `fn(context)` into an `Objective`."""
    if isinstance(value, Objective):
        return value
    if isinstance(value, (int, float, np.floating, np.integer)):
        const = float(value)
        return Objective(lambda c: tf.constant(const), (), f"{const:g}")
    if callable(value):
        return Objective(value, (), getattr(value, "__name__", "custom"))
    raise TypeError(f"Cannot use {type(value).__name__} as an objective.")


def _pick(t: tf.Tensor, batch: int | None) -> tf.Tensor:
    t = tf.cast(t, tf.float32)
    return t if batch is None else t[batch : batch + 1]


def _class_logits(logits: tf.Tensor) -> tf.Tensor:
    """One logit per class; one binary unit `z` is classes `(-z, z)` (`keras_cnnvis.inputs`)."""
    return tf.concat([-logits, logits], axis=-1) if logits.shape[-1] == 1 else logits


def _log_probabilities(logits: tf.Tensor) -> tf.Tensor:
    """Log-softmax; `(log(1 - p), log p)` with `p = sigmoid(z)` for one binary unit."""
    if logits.shape[-1] == 1:
        return tf.math.log_sigmoid(_class_logits(logits))
    return tf.nn.log_softmax(logits)


def _spatial_mean(t: tf.Tensor) -> tf.Tensor:
    """Mean over every axis except batch and channel: `(N, ..., C) -> (N, C)`."""
    if t.shape.rank is not None and t.shape.rank > 2:
        return tf.reduce_mean(t, axis=list(range(1, t.shape.rank - 1)))
    return t


def channel(layer: Any, index: int, batch: int | None = None) -> Objective:
    """The mean activation of one channel (or one unit of a dense layer).

    Example:

    ```python
    image = render(model, channel("conv3", 7)).images[0]
    ```

    Args:
        layer: the layer (name, path or object).
        index: the channel index.
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """
    index = int(index)
    return Objective(
        lambda c: tf.reduce_sum(_spatial_mean(_pick(c[layer], batch))[:, index]),
        [layer],
        f"channel({layer!r}, {index})",
    )


def neuron(
    layer: Any, index: int, x: int | None = None, y: int | None = None, batch: int | None = None
) -> Objective:
    """The activation of one channel at one spatial position (the centre by default).

    Args:
        layer: the layer.
        index: the channel index.
        x: column of the position. Defaults to None (the centre).
        y: row of the position. Defaults to None (the centre).
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """
    index = int(index)

    def fn(c):
        t = _pick(c[layer], batch)
        if t.shape.rank == 2:
            return tf.reduce_sum(t[:, index])
        h, w = tf.shape(t)[1], tf.shape(t)[2]
        yy = h // 2 if y is None else int(y)
        xx = w // 2 if x is None else int(x)
        return tf.reduce_sum(t[:, yy, xx, index])

    return Objective(fn, [layer], f"neuron({layer!r}, {index})")


def class_logit(index: int, batch: int | None = None) -> Objective:
    """The pre-softmax score of one class (Simonyan et al. 2013 maximise this).

    A one-unit binary head is two classes: class 1 scores the unit's logit `z`, class 0
    its opposite `-z`.

    Args:
        index: the class index.
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """
    index = int(index)
    return Objective(
        lambda c: tf.reduce_sum(_class_logits(_pick(c.logits, batch))[:, index]),
        [LOGITS],
        f"class_logit({index})",
    )


def class_log_probability(index: Any, batch: int | None = None) -> Objective:
    """The log-softmax of a class: maximising it drives the prediction to that class.

    For a one-unit binary head, the log-sigmoid: `log p` for class 1, `log(1 - p)` for
    class 0.

    Args:
        index: the class index, or one index per image of the batch (e.g. labels).
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """
    if isinstance(index, (int, np.integer)):
        index = int(index)
        return Objective(
            lambda c: tf.reduce_sum(_log_probabilities(_pick(c.logits, batch))[:, index]),
            [LOGITS],
            f"class_log_probability({index})",
        )
    indices = np.asarray(index, np.int32).reshape(-1)

    def fn(c):
        logp = _log_probabilities(_pick(c.logits, batch))
        return tf.reduce_sum(tf.gather(logp, indices, axis=1, batch_dims=1))

    return Objective(fn, [LOGITS], f"class_log_probability({len(indices)} labels)")


def class_margin(index: Any, batch: int | None = None) -> Objective:
    """The logit of a class minus the largest other logit (Carlini & Wagner's margin):
    positive exactly when the class is predicted. Unlike the log-probability, its gradient
    does not vanish when the model is already confident.

    A one-unit binary head is two classes (see `class_logit`): the margin of class 1 is
    `2z` (positive exactly when the model predicts class 1) and that of class 0 is `-2z`.

    Args:
        index: the class index, or one index per image of the batch (e.g. labels), or an
            int32 `tf.Variable` of them (read at every step).
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """
    scalar = isinstance(index, (int, np.integer))
    if isinstance(index, tf.Variable):  # labels that change between runs (no retrace)
        indices = index
    else:
        indices = np.asarray(index, np.int32).reshape(-1)

    def fn(c):
        logits = _class_logits(_pick(c.logits, batch))
        idx = tf.fill([tf.shape(logits)[0]], int(indices[0])) if scalar else indices
        onehot = tf.one_hot(idx, tf.shape(logits)[1]) > 0.5
        own = tf.reduce_sum(tf.where(onehot, logits, 0.0), axis=1)
        other = tf.reduce_max(tf.where(onehot, tf.float32.min, logits), axis=1)
        return tf.reduce_sum(own - other)

    return Objective(fn, [LOGITS], f"class_margin({index if scalar else indices.shape[0]})")


def deepdream(layer: Any, batch: int | None = None) -> Objective:
    """DeepDream's objective: the mean squared activation of a whole layer.

    Args:
        layer: the layer.
        batch: score only this image of the batch. Defaults to None (sum over the batch).

    Returns:
        An `Objective`.
    """

    def fn(c):
        t = _pick(c[layer], batch)
        axes = list(range(1, t.shape.rank))
        return tf.reduce_sum(tf.reduce_mean(tf.square(t), axis=axes))

    return Objective(fn, [layer], f"deepdream({layer!r})")


def feature_match(layer: Any, target: Any) -> Objective:
    """Minus the normalised squared distance to target features (Mahendran & Vedaldi 2015).

    The value is `-||phi(x) - phi_0||^2 / ||phi_0||^2`: 0 for a perfect match, -1 for an
    image whose features are all zero.

    Args:
        layer: the layer.
        target: the target features `phi_0`, shaped like the layer's output for the batch
            (a batch of 1 broadcasts).

    Returns:
        An `Objective`.
    """
    target = np.asarray(target, np.float32)
    axes = tuple(range(1, target.ndim))
    norms = np.maximum(np.sum(target.astype(np.float64) ** 2, axis=axes), 1e-12)
    norms = norms.astype(np.float32)

    def fn(c):
        t = tf.cast(c[layer], tf.float32)
        diff = tf.reduce_sum(tf.square(t - target), axis=list(range(1, t.shape.rank)))
        return -tf.reduce_sum(diff / norms)

    return Objective(fn, [layer], f"feature_match({layer!r})")


def gram_matrix(features: Any) -> tf.Tensor:
    """Channel correlations `G[b, i, j] = mean over positions of F[b, ., i] * F[b, ., j]`.

    Args:
        features: `(N, H, W, C)` (or `(N, P, C)`) activations.

    Returns:
        A float32 `(N, C, C)` tensor.
    """
    f = tf.cast(features, tf.float32)
    n, c = tf.shape(f)[0], tf.shape(f)[-1]
    f = tf.reshape(f, [n, -1, c])
    return tf.matmul(f, f, transpose_a=True) / tf.cast(tf.shape(f)[1], tf.float32)


def gram_style(layer: Any, target_gram: Any) -> Objective:
    """Minus the normalised Gram-matrix distance of one layer (Gatys et al. 2015).

    The value is `-||G(x) - G_0||^2 / ||G_0||^2` (per image, summed over the batch), so
    every layer counts alike whatever its scale.

    Args:
        layer: the layer.
        target_gram: the target `(C, C)` (or `(1, C, C)`) Gram matrix, e.g.
            `gram_matrix(features_of_texture)`.

    Returns:
        An `Objective`.
    """
    target = np.asarray(target_gram, np.float32).reshape((-1,) + np.asarray(target_gram).shape[-2:])
    norm = float(max(np.sum(target[0].astype(np.float64) ** 2), 1e-12))

    def fn(c):
        g = gram_matrix(c[layer])
        return -tf.reduce_sum(tf.square(g - target)) / norm

    return Objective(fn, [layer], f"gram_style({layer!r})")


def total_variation(beta: float = 2.0) -> Objective:
    """The total variation of the image, `mean((dx^2 + dy^2)^(beta/2))`: subtract it.

    A penalty (higher = rougher); use `objective - weight * total_variation()`.

    Args:
        beta: the exponent (Mahendran & Vedaldi use 2 for smooth images). Defaults to 2.0.

    Returns:
        An `Objective`.
    """
    beta = float(beta)

    def fn(c):
        img = tf.cast(c.image, tf.float32)
        dy = img[:, 1:, :-1, :] - img[:, :-1, :-1, :]
        dx = img[:, :-1, 1:, :] - img[:, :-1, :-1, :]
        sq = dx * dx + dy * dy
        per_pixel = sq if beta == 2.0 else tf.pow(sq + 1e-8, beta / 2.0)
        return tf.reduce_sum(tf.reduce_mean(per_pixel, axis=[1, 2, 3]))

    return Objective(fn, (), f"total_variation({beta:g})")


def alpha_norm(alpha: float = 6.0, center: float = 0.5) -> Objective:
    """The mean `|image - center|^alpha` (Mahendran & Vedaldi's alpha-norm): subtract it.

    Args:
        alpha: the exponent. Defaults to 6.0.
        center: the value counted as zero (mid-grey). Defaults to 0.5.

    Returns:
        An `Objective`.
    """
    alpha, center = float(alpha), float(center)

    def fn(c):
        dev = tf.abs(tf.cast(c.image, tf.float32) - center)
        return tf.reduce_sum(tf.reduce_mean(tf.pow(dev + 1e-12, alpha), axis=[1, 2, 3]))

    return Objective(fn, (), f"alpha_norm({alpha:g})")


def l2(center: float = 0.5) -> Objective:
    """The mean squared deviation of the image from `center`: subtract it (L2 penalty).

    Args:
        center: the value counted as zero (mid-grey). Defaults to 0.5.

    Returns:
        An `Objective`.
    """
    center = float(center)
    return Objective(
        lambda c: tf.reduce_sum(
            tf.reduce_mean(tf.square(tf.cast(c.image, tf.float32) - center), axis=[1, 2, 3])
        ),
        (),
        "l2",
    )
