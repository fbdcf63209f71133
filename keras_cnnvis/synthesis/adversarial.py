"""Adversarial examples (FGSM, Goodfellow et al. 2015; PGD, Madry et al. 2018): imperceptible
perturbations that change a prediction; and fooling images: noise the model is sure about.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.inputs import class_scores, predicted_classes
from keras_cnnvis.model import output_activation, predict_fn
from keras_cnnvis.synthesis import objectives as obj
from keras_cnnvis.synthesis import param as param_lib
from keras_cnnvis.synthesis._checks import check_classes
from keras_cnnvis.synthesis.models import fit_image
from keras_cnnvis.synthesis.regularizers import Regularizer
from keras_cnnvis.synthesis.render import Renderer, image_size

METHODS = ("fgsm", "pgd")


def _raw_pixels(shape, batch, init, seed):
    return param_lib.pixel_image(shape, batch, init=init, mode="raw", seed=seed)


def predict(
    model: keras.Model, images: np.ndarray, preprocess: Callable | None = None
) -> np.ndarray:
    """The model's outputs for an image batch in [0, 1], as float32 numpy."""
    x = images if preprocess is None else preprocess(images)
    return np.asarray(predict_fn(model)(np.asarray(x, np.float32)), np.float32)


def check_attack(method: str, epsilon: float) -> None:
    """Raises ValueError for an unknown attack method or an epsilon outside [0, 1]."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if not 0 <= float(epsilon) <= 1:
        raise ValueError(f"epsilon is a pixel change in [0, 1]; got {epsilon}.")


class Attack:
    """A compiled L-infinity attack (FGSM or PGD) of one model on [0, 1] images of one shape.

    Each batch runs through a `Renderer` of sign steps on the raw pixels, each projected
    into the epsilon-ball and [0, 1]. The classes, the ball and the step size are variables
    the compiled step reads, so it is traced once per batch size and kept for every further
    batch, strength and label set; it calls the live model, so it follows training.
    `adversarial_example` builds one per call; `ClassPredictor.attack` keeps one, so
    `adversarial_accuracy` attacks at every record of a callback without tracing again.

    Example:

    ```python
    attack = Attack(model, (32, 32, 3))
    adv = attack(x, labels, epsilon=8 / 255)   # untargeted PGD against the labels
    ```

    Args:
        model: a Keras image classifier.
        shape: `(height, width, channels)` of the images, as the model takes them.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
    """

    def __init__(
        self, model: keras.Model, shape: Sequence[int], preprocess: Callable | None = None
    ):
        self.model = model
        self.shape = tuple(int(s) for s in shape)
        self.preprocess = preprocess
        self._runs: dict = {}

    def _run(self, batch: int, targeted: bool) -> tuple:
        """(renderer, classes, low, high) for `batch` images, built on first use."""
        if (batch, targeted) not in self._runs:
            classes = tf.Variable(tf.zeros(batch, tf.int32), trainable=False)
            low = tf.Variable(tf.zeros((batch,) + self.shape), trainable=False)
            high = tf.Variable(tf.zeros((batch,) + self.shape), trainable=False)
            margin = obj.class_margin(classes)
            renderer = Renderer(
                self.model,
                margin if targeted else -margin,
                self.shape,
                batch=batch,
                param=_raw_pixels,
                transforms=None,
                optimizer="sign",
                regularizers=[
                    Regularizer("linf_ball", update=lambda v, g, s: tf.clip_by_value(v, low, high))
                ],
                preprocess=self.preprocess,
            )
            self._runs[(batch, targeted)] = (renderer, classes, low, high)
        return self._runs[(batch, targeted)]

    def __call__(
        self,
        images: np.ndarray,
        classes: np.ndarray,
        epsilon: float,
        targeted: bool = False,
        method: str = "pgd",
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        seed: int = 0,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Attacks `images` (float32 `(N, H, W, C)` in [0, 1]) away from `classes` (one per
        image), or towards them when `targeted`; see `adversarial_example` for the rest.

        Returns:
            The adversarial images, float32 `(N, H, W, C)` in [0, 1].

        Raises:
            ValueError: for an unknown method or an epsilon outside [0, 1].
        """
        check_attack(method, epsilon)
        eps = float(epsilon)
        if method == "fgsm":
            steps, lr = 1, eps
        else:
            steps = int(steps)
            lr = float(step_size) if step_size is not None else 2.5 * eps / max(steps, 1)
        rng = np.random.default_rng(seed)
        out = []
        for start in range(0, len(images), int(batch_size)):
            chunk = images[start : start + int(batch_size)]
            renderer, wanted, low, high = self._run(len(chunk), targeted)
            init = chunk
            if method == "pgd" and random_start and eps > 0:
                init = np.clip(chunk + rng.uniform(-eps, eps, chunk.shape), 0, 1).astype(np.float32)
            wanted.assign(np.asarray(classes[start : start + len(chunk)], np.int32))
            center = chunk - 0.5  # the raw pixel variable is centred
            low.assign(np.maximum(center - eps, -0.5))
            high.assign(np.minimum(center + eps, 0.5))
            renderer.learning_rate = lr
            renderer.reset(init=init)
            out.append(renderer.run(steps).images)
        return np.concatenate(out).astype(np.float32)


def adversarial_example(
    model: keras.Model,
    images: Any,
    target: int | Sequence[int] | None = None,
    method: str = "fgsm",
    epsilon: float = 8 / 255,
    steps: int = 10,
    step_size: float | None = None,
    labels: Sequence[int] | None = None,
    random_start: bool = True,
    preprocess: Callable | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:
    """Perturbs images within `epsilon` (max per pixel) to change the model's prediction.

    Untargeted, it lowers the margin of the true class (`labels`, or the model's own
    prediction) over the best other class; with `target`, it raises the target's margin
    (Carlini & Wagner's margin: its gradient does not vanish on confident predictions).
    FGSM takes one step of size `epsilon` along the gradient's sign; PGD takes `steps`
    sign steps of `step_size`, each projected back into the epsilon-ball and [0, 1]. A
    one-unit binary head (one sigmoid or one logit) is two classes, as everywhere in
    keras-cnnvis: class 1 is the unit, class 0 its opposite (`objectives.class_margin`).

    Example:

    ```python
    adv = adversarial_example(model, x, method="pgd", epsilon=4 / 255)
    flipped = model.predict(adv).argmax(-1) != model.predict(x).argmax(-1)
    ```

    Args:
        model: a Keras image classifier.
        images: `(H, W, C)` or `(N, H, W, C)` in [0, 1].
        target: a class (or one per image) to reach. Defaults to None (untargeted).
        method: `"fgsm"` or `"pgd"`. Defaults to `"fgsm"`.
        epsilon: the largest change per pixel, in [0, 1] units. Defaults to 8/255.
        steps: PGD steps. Defaults to 10.
        step_size: PGD step. Defaults to None (`2.5 * epsilon / steps`).
        labels: true classes for the untargeted attack. Defaults to None (predictions).
        random_start: PGD starts at a random point of the ball. Defaults to True.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed. Defaults to 0.
        batch_size: images attacked together. Defaults to 64.

    Returns:
        The adversarial images, float32 in [0, 1], shaped like `images` (resized to a
        fixed-size model's input if needed).

    Raises:
        ValueError: for an unknown method, a negative epsilon, class indices out of range,
            or a non-image model.
    """
    check_attack(method, epsilon)
    single = np.asarray(images).ndim == 3
    x = fit_image(images, model)
    n = len(x)
    used = []
    if target is not None:
        target = np.broadcast_to(np.asarray(target, np.int64).reshape(-1), (n,))
        used.append(target)
    if labels is None and target is None:
        outputs = predict(model, x, preprocess)
        labels = predicted_classes(outputs, output_activation(model).name)
    if labels is not None:
        labels = np.broadcast_to(np.asarray(labels, np.int64).reshape(-1), (n,))
        used.append(labels)
    check_classes(model, np.unique(np.concatenate(used)), x.shape[1:], preprocess)
    adv = Attack(model, x.shape[1:], preprocess)(
        x,
        labels if target is None else target,
        epsilon,
        targeted=target is not None,
        method=method,
        steps=steps,
        step_size=step_size,
        random_start=random_start,
        seed=seed,
        batch_size=batch_size,
    )
    return adv[0] if single else adv


def fooling_image(
    model: keras.Model,
    class_index: int | Sequence[int],
    size: Any = None,
    steps: int = 200,
    confidence: float = 0.99,
    learning_rate: float = 0.05,
    param: Any = "pixel",
    preprocess: Callable | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Turns random noise into an image the model assigns to a class with high confidence
    (Nguyen et al. 2015): the model is sure, a person sees noise.

    Optimises the class's log-probability from uniform noise with Adam, without any
    image prior, and stops once every image reaches `confidence`.

    Example:

    ```python
    fool = fooling_image(model, 3)
    model.predict(fool[None])[0, 3]  # >= 0.99
    ```

    Args:
        model: a Keras image classifier.
        class_index: the class, or several (one image each).
        size: image size. Defaults to None (the model's input size).
        steps: the most optimisation steps. Defaults to 200.
        confidence: stop when every image reaches this probability. Defaults to 0.99.
        learning_rate: Adam's step size. Defaults to 0.05.
        param: `"pixel"` or `"fourier"`. Defaults to `"pixel"`.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: seed of the noise. Defaults to 0.

    Returns:
        float32 `(H, W, C)` for one class, `(N, H, W, C)` for several, in [0, 1].

    Raises:
        ValueError: for a class index out of range or a non-image model.
    """
    single = isinstance(class_index, (int, np.integer))
    classes = np.asarray([class_index] if single else list(class_index), np.int64)
    shape = image_size(model, size)
    check_classes(model, classes, shape, preprocess)
    noise = np.random.default_rng(seed).uniform(0.05, 0.95, (len(classes),) + shape)
    renderer = Renderer(
        model,
        obj.class_log_probability(classes),
        shape,
        batch=len(classes),
        param=param,
        init=noise.astype(np.float32),
        transforms=None,
        learning_rate=learning_rate,
        preprocess=preprocess,
        seed=seed,
    )
    activation = output_activation(model).name
    done, chunk = 0, 10
    while done < int(steps):
        renderer.run(min(chunk, int(steps) - done))
        done += chunk
        outputs = predict(model, renderer.images(), preprocess)
        if np.all(class_scores(outputs, classes, activation) >= confidence):
            break
    images = renderer.images()
    return images[0] if single else images
