"""How `CNNVisCallback` reads the user's data and the model before it builds its monitors: label
kinds (classes, per-pixel masks, regression values), probe picks, masks, automatic layers from
the model's anatomy, the checks of what the user can fix, and task-specific targets.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras
import numpy as np

from keras_cnnvis import inputs
from keras_cnnvis.confusion import class_names_for
from keras_cnnvis.model import conv_layers, find_layers, iter_layers
from keras_cnnvis.model.head import Head


def label_kind(y: Any, n: int) -> str | None:
    """What labels hold: one class per example (`"classes"`: indices, one-hot or
    multi-hot rows), a mask per example (`"pixels"`), or regression targets (`"values"`)."""
    if y is None:
        return None
    y = np.asarray(y)
    if inputs.is_pixel_labels(y, n):
        return "pixels"
    if y.dtype.kind in "iub":
        return "classes"
    finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    whole = y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(finite == np.round(finite))
    if whole and finite.size and finite.min() >= 0 and (y.ndim == 1 or finite.max() <= 1):
        return "classes"
    return "values"


def split_labels(y: Any, n: int) -> tuple:
    """`(classes (N,) or None, masks (N, H, W) or None, kind)` from validation labels."""
    kind = label_kind(y, n)
    if kind == "classes":
        return inputs.class_labels(y, n), None, kind
    if kind == "pixels":
        return None, inputs.pixel_labels(y, n), kind
    if kind == "values" and len(np.asarray(y)) != n:
        inputs.class_labels(y, n)  # raises: not one label per example
    return None, None, kind


def pick_probes(labels: np.ndarray | None, n_examples: int, n: int) -> np.ndarray:
    """Indices of `n` probe examples: round-robin over classes when labels are known."""
    if labels is None:
        return np.arange(min(n, n_examples))
    return inputs.balanced_indices(labels, n)


def check_options(options: dict, registry: dict) -> None:
    """Raises for per-monitor options that are not arguments of that monitor's callback."""
    for name, kwargs in options.items():
        cls = registry[name].callback_class
        if not isinstance(kwargs, dict):
            raise ValueError(
                f"options['{name}'] must be a dict of {cls.__name__} arguments; got "
                f"{type(kwargs).__name__}."
            )
        takes = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(kwargs) - set(takes))
        if unknown:
            raise ValueError(
                f"options['{name}'] has {unknown}, which {cls.__name__} does not take; its "
                f"arguments are {takes}."
            )


def check_masks(masks: Any, probe: Any, x_val: Any, limit: int) -> np.ndarray | None:
    """Masks as an array with one mask per probe image (if given) or validation image."""
    if masks is None:
        return None
    masks = np.asarray(masks)
    if probe is not None:
        n, what = len(probe), "probe image"
    elif x_val is not None:
        masks, n, what = masks[:limit], len(x_val), "validation image"
    else:
        raise ValueError(
            "masks were given without probe images or validation_data to go with them; "
            "pass one of them, or leave masks None."
        )
    if len(masks) != n:
        raise ValueError(f"masks must hold one mask per {what} ({n}); got {len(masks)}.")
    return masks


def spread(items: list, n: int) -> list:
    """Up to `n` items spread evenly from the first to the last."""
    if len(items) <= n:
        return list(items)
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, n)).astype(int))
    return [items[i] for i in picks]


def auto_layers(model: keras.Model, n: int = 4) -> list[str]:
    """Up to `n` convolution layers spread evenly from the first to the last (paths)."""
    return spread([info.path for info in conv_layers(model)], n)


def anatomy_layers(model: keras.Model, shape: tuple, n: int = 4) -> tuple:
    """`(layers, kernel_layers, feature_map)` chosen from the model's anatomy: up to `n`
    stage outputs from the first to the feature map, the main-path convolution producing
    each, and the feature map. Falls back to spread convolution layers (and the last one)
    when the anatomy finds no stage."""
    from keras_cnnvis.model.anatomy import model_anatomy

    try:
        anatomy = model_anatomy(model, shape)
    except Exception:  # e.g. a subclassed model the trace cannot follow
        anatomy = None
    if anatomy is None or not anatomy.stages:
        convs = auto_layers(model, n)
        return convs, convs, (convs[-1] if convs else None)
    picked = anatomy.pick(n)
    kernels = list(dict.fromkeys(k for k in map(anatomy.kernel_of, picked) if k is not None))
    return picked, kernels, anatomy.feature_map


def check_user_inputs(model: keras.Model, head: Head, cb: Any) -> None:
    """Raises for what the user can fix, before any monitor is built: unknown layers,
    probes that do not fit the model, labels outside its classes, the wrong number of
    class names. Everything else a monitor cannot do is skipped with a warning."""
    if cb.layers is not None:
        find_layers(model, cb.layers)
    if cb.probe is not None:
        inputs.check_images(cb.probe, model, "probe images")
    if cb.x_val is not None:
        inputs.check_image_shape(cb.x_val, model, "validation images")
    n = head.n_classes
    if n is None:
        return
    for labels in (cb.y_val, cb.probe_labels, cb.y_pixels):
        inputs.check_class_range(labels, n, model.name)
    if cb.class_names is not None:
        class_names_for(n, cb.class_names)


def first_conv_input_range(model: keras.Model, images: np.ndarray) -> tuple[float, float] | None:
    """The range of the values the model's first convolution receives for `images` (up to
    8 of them, in inference mode), or None if it cannot be read."""
    from keras_cnnvis.model.calls import forward_until

    try:
        first = find_layers(model, "all_conv")[0]
        seen = forward_until(model, [first.layer], np.asarray(images[:8]), capture="input")[0]
        seen = np.asarray(keras.ops.convert_to_numpy(seen), dtype=np.float64)
    except Exception:  # noqa: BLE001 - only a warning depends on it
        return None
    if seen.size == 0 or not np.all(np.isfinite(seen)):
        return None
    return float(seen.min()), float(seen.max())


def warn_pixel_range(model: keras.Model, images: np.ndarray | None) -> None:
    """Warns about 0-255 images that reach the first convolution unscaled.

    Images in [0, 255] are fine when the model scales them itself (a Rescaling or
    Normalization layer, or `keras.applications.*.preprocess_input` applied inside it):
    what the first convolution receives for a few of them decides. Where that cannot be
    read, a Rescaling or Normalization layer anywhere in the model counts as scaling.
    """
    if images is None or images.size == 0:
        return
    lo, hi = float(np.min(images)), float(np.max(images))
    if lo < 0.0 or hi <= 2.0:
        return
    seen = first_conv_input_range(model, images)
    if seen is not None:
        if seen[0] < 0.0 or seen[1] <= 2.0:
            return
        what = (
            f"the first convolution receives values in [{seen[0]:g}, {seen[1]:g}]: model "
            f"'{model.name}' does not scale them"
        )
    else:
        rescales = (keras.layers.Rescaling, keras.layers.Normalization)
        if any(isinstance(i.layer, rescales) for i in iter_layers(model)):
            return
        what = f"model '{model.name}' has no Rescaling or Normalization layer"
    warnings.warn(
        f"CNNVisCallback: the images range over [{lo:g}, {hi:g}] (0-255 pixels?) but "
        f"{what}. If it was trained on inputs in [0, 1], pass the images divided by 255: "
        "every visualisation shows the model's response to exactly these inputs.",
        UserWarning,
        stacklevel=4,
    )


class OutputValue:
    """Attribution target of a regression head: the output value (summed over units)."""

    def __call__(self, outputs):
        return outputs


class PredictedMask:
    """Attribution target of a per-pixel classifier: for each image, the class its mask
    predicts most often (ignoring class 0, the background, when anything else is
    predicted), scored as the sum of that class's output over the pixels predicted as it
    (Vinogradova et al. 2020, "Towards interpretable semantic segmentation via
    gradient-weighted class activation mapping")."""

    def __init__(self, head: Head):
        self.head = head
        # The one rule for a one-unit head; no output values are known in the graph, so
        # an unknown activation reads as a logit.
        self.threshold = inputs.binary_threshold((), head.activation)

    def __call__(self, outputs):
        import tensorflow as tf

        out = tf.cast(outputs, tf.float32)
        if out.shape.rank == 3:
            out = out[..., None]
        if out.shape[-1] == 1:
            mask = tf.cast(out[..., 0] > self.threshold, tf.float32)
            return tf.reduce_sum(out[..., 0] * mask, axis=[1, 2])
        n = out.shape[-1]
        pred = tf.argmax(out, axis=-1)
        counts = tf.reduce_sum(tf.one_hot(pred, n), axis=[1, 2])  # (N, C)
        fore = tf.concat([tf.zeros_like(counts[:, :1]) - 1.0, counts[:, 1:]], axis=1)
        chosen = tf.where(tf.reduce_max(fore, axis=1) > 0, tf.argmax(fore, 1), tf.argmax(counts, 1))
        mask = tf.cast(tf.equal(pred, chosen[:, None, None]), tf.float32)
        score = tf.gather(out, chosen, axis=-1, batch_dims=1)
        return tf.reduce_sum(score * mask, axis=[1, 2])


def task_target(head: Head) -> Any:
    """The attribution target for a head without per-example classes, or None."""
    if head.task in ("regression", "dense"):
        return OutputValue()
    if head.task == "segmentation":
        return PredictedMask(head)
    return None
