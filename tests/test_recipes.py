"""Real recipes: the models people train, written the way the keras.io examples write them, each
fit for one epoch with `CNNVisCallback(logdir, validation_data=...)` and no other argument. Every
one runs to the end and logs filters, health, activations and attribution; what cannot apply is
skipped with one warning that says why. The table these tests print is the README's "works
with" table."""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import MONITOR_TAGS
from eventfiles import read_run
from keras_cnnvis import datasets
from keras_cnnvis.callbacks import CNNVisCallback

L = keras.layers
SIZE = 32


def shapes_data(n=96):
    x, y, masks = datasets.shapes(n, size=SIZE, seed=0)
    return x.astype(np.float32), y.astype(np.int64), masks


def augmentation():
    return keras.Sequential(
        [L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1)], name="augment"
    )


def from_scratch_binary():
    """keras.io "Image classification from scratch": augmentation and Rescaling inside the
    model, 0-255 inputs, one logit with BinaryCrossentropy(from_logits=True)."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = augmentation()(inputs)
    x = L.Rescaling(1.0 / 255)(x)
    x = L.Conv2D(16, 3, strides=2, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    previous = x
    for size in (32, 64):
        x = L.Activation("relu")(x)
        x = L.SeparableConv2D(size, 3, padding="same")(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = L.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = L.add([x, residual])
        previous = x
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(1, activation=None)(L.Dropout(0.25)(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    x, y, _ = shapes_data()
    return model, x * 255.0, (y == 0).astype(np.int64)


def small_head(units, activation, loss):
    """Two convolutions and global pooling under a Dense head of `units`."""
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(16, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(units, activation=activation),
        ]
    )
    model.compile("adam", loss)
    return model


def sigmoid_binary():
    model = small_head(1, "sigmoid", "binary_crossentropy")
    x, y, _ = shapes_data()
    return model, x, (y == 1).astype(np.int64)


def frozen_nested_base():
    """keras.io "Transfer learning & fine-tuning": a frozen base (random weights here) with its
    own augmentation and rescaling, called with training=False under a new head."""
    base = keras.applications.MobileNetV2(
        weights=None, input_shape=(SIZE, SIZE, 3), include_top=False, alpha=0.35
    )
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = augmentation()(inputs)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = L.Dropout(0.2)(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, L.Dense(5, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y, _ = shapes_data()
    return model, x * 255.0, y


def multi_label():
    model = small_head(3, "sigmoid", "binary_crossentropy")
    x, y, _ = shapes_data()
    labels = np.stack([y == 0, y >= 2, y % 2 == 1], axis=1).astype(np.float32)
    return model, x, labels


def regression():
    model = small_head(1, None, "mse")
    x, _, masks = shapes_data()
    return model, x, masks.reshape(len(masks), -1).mean(axis=1).astype(np.float32)  # object size


def segmentation():
    """A small U-Net with per-pixel labels (background and the shape class + 1)."""
    inputs = keras.Input((SIZE, SIZE, 3))
    e1 = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    e2 = L.Conv2D(16, 3, padding="same", activation="relu")(L.MaxPooling2D()(e1))
    e3 = L.Conv2D(32, 3, padding="same", activation="relu")(L.MaxPooling2D()(e2))
    d2 = L.Conv2DTranspose(16, 3, strides=2, padding="same")(e3)
    d2 = L.Conv2D(16, 3, padding="same", activation="relu")(L.Concatenate()([d2, e2]))
    d1 = L.UpSampling2D()(d2)
    d1 = L.Conv2D(8, 3, padding="same", activation="relu")(L.Concatenate()([d1, e1]))
    outputs = L.Conv2D(6, 1, activation="softmax")(d1)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y, masks = shapes_data()
    pixel = (masks > 0.5).astype(np.int64) * (y[:, None, None] + 1)
    return model, x, pixel


def two_outputs():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Conv2D(8, 3, activation="relu")(inputs)
    x = L.GlobalAveragePooling2D()(L.Conv2D(16, 3, activation="relu")(L.MaxPooling2D()(x)))
    kind = L.Dense(5, activation="softmax", name="kind")(x)
    size = L.Dense(1, name="size")(x)
    model = keras.Model(inputs, [kind, size])
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    x, y, masks = shapes_data()
    return model, x, (y, masks.reshape(len(masks), -1).mean(axis=1))


RECIPES = {
    "augmentation + Rescaling on 0-255 data, one logit (keras.io from scratch)": from_scratch_binary,
    "binary head, one sigmoid unit": sigmoid_binary,
    "frozen nested base with its own augmentation (keras.io transfer learning)": frozen_nested_base,
    "multi-label, several sigmoid units": multi_label,
    "regression": regression,
    "segmentation (U-Net, per-pixel labels)": segmentation,
    "two outputs (the first is explained)": two_outputs,
}
MUST_LOG = ("filters/", "json/health", "activations/", "attribution/")


def fit_recipe(tmp_path, name, **kwargs):
    """Fits recipe `name` for one epoch with CNNVisCallback; returns (callback, records,
    warnings)."""
    model, x, y = RECIPES[name]()
    val = (x[:48], y[:48] if not isinstance(y, tuple) else y[0][:48])
    train_y = y if not isinstance(y, tuple) else list(y)
    cb = CNNVisCallback(str(tmp_path), validation_data=val, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, train_y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    assert len(history.history["loss"]) == 1  # the fit ran to the end
    return cb, read_run(os.path.join(str(tmp_path), "cnnvis")), caught


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_fits_to_the_end_with_defaults(tmp_path, name):
    cb, run, caught = fit_recipe(tmp_path, name)
    for prefix in MUST_LOG:
        assert any(tag.startswith(prefix) for tag in run), (name, prefix, sorted(run))
    failed = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert not failed, failed  # no monitor switched itself off
    skipped = [str(w.message) for w in caught if "monitor is skipped" in str(w.message)]
    assert len(skipped) == len(cb.not_applicable)  # one warning per skipped monitor
    shown = sorted(
        {tag.split("/")[1] if tag.startswith("json/") else tag.split("/")[0] for tag in run}
    )
    print(
        f"\n| {name} | {', '.join(shown)} | "
        + "; ".join(f"{m}: {why}" for m, why in cb.not_applicable.items())
        + " |"
    )
    if name.startswith("regression"):
        assert {"confusion", "embedding", "neighbors", "classes"} <= set(cb.not_applicable)
    if name.startswith("segmentation"):
        record = run["json/confusion/matrix"][-1].value
        assert record["per_pixel"] and record["n_examples"] == 48 * SIZE * SIZE
        assert {"embedding", "neighbors", "classes"} <= set(cb.not_applicable)
    if name.startswith("binary") or "one logit" in name:
        matrix = np.asarray(run["json/confusion/matrix"][-1].value["matrix"])
        assert matrix.shape == (2, 2) and matrix.sum() == 48


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_monitor_on_schedule_runs_or_says_why(tmp_path, name):
    """Without the time budget every applicable monitor records, none switches off."""
    light = {
        "embedding": {"methods": ("pca",)},
        "classes": {"steps": 2},
        "saliency": {"steps": 4},
        "robustness": {"severities": (1,), "epsilons": (), "n_probes": 1},
    }
    cb, run, caught = fit_recipe(tmp_path, name, budget=None, options=light)
    failed = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert not failed, failed
    assert all(not m.disabled for m in cb.monitors)
    for monitor in cb.names:
        prefix = MONITOR_TAGS[monitor]
        assert any(tag.startswith(prefix) for tag in run), (monitor, sorted(run))
    assert set(cb.names) | set(cb.not_applicable) == set(MONITOR_TAGS)
    if name.startswith("binary") or "one logit" in name:
        # one unit, two classes: class 1 maximises the unit, class 0 its opposite
        record = run["json/synthesis/classes"][-1].value
        assert record["classes"] == [0, 1] and len(record["predicted"]) == 2


def _scaled_by(preprocess):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = L.Conv2D(4, 3, activation="relu")(preprocess(inputs))
    return keras.Model(inputs, L.Dense(5)(L.GlobalAveragePooling2D()(x)), name="scaled")


@pytest.mark.parametrize(
    "preprocess, warns",
    [
        (lambda t: t, True),  # 0-255 pixels straight into the first convolution
        (L.Rescaling(1 / 255), False),
        (keras.applications.resnet50.preprocess_input, False),  # caffe: BGR minus the mean
        (keras.applications.densenet.preprocess_input, False),  # torch: standardised
        (keras.applications.mobilenet_v2.preprocess_input, False),  # tf: [-1, 1]
    ],
    ids=["unscaled", "Rescaling", "resnet50", "densenet", "mobilenet_v2"],
)
def test_pixel_range_warning_reads_what_the_first_convolution_receives(preprocess, warns):
    """keras.io fine-tuning puts `keras.applications.*.preprocess_input` inside the model
    and feeds 0-255 images: no Rescaling layer, yet nothing to warn about."""
    from keras_cnnvis.callbacks import plan

    x = shapes_data(8)[0] * 255.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan.warn_pixel_range(_scaled_by(preprocess), x)
    messages = [str(w.message) for w in caught if "0-255 pixels?" in str(w.message)]
    assert len(messages) == int(warns), messages
    if warns:
        assert f"first convolution receives values in [0, {x.max():g}]" in messages[0]
