"""Bad input gives a clear message naming the problem and the fix, before the first epoch
(at construction where the model is not needed, else at the start of `fit`), and writes
nothing. One parametrised matrix; each case states the message it must give.
"""

import os

import keras
import numpy as np
import pytest

from eventfiles import event_files
from keras_cnnvis.callbacks import (
    ClassVisualizationCallback,
    CNNVisCallback,
    GradCAMCallback,
    OcclusionCallback,
)
from robustness_models import LIGHT, shapes_data, tiny_cnn

(X, Y), (X_VAL, Y_VAL, M_VAL) = shapes_data()


def dense_only():
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Flatten(name="flatten")(keras.layers.Rescaling(1.0, name="scale")(inputs))
    h = keras.layers.Dense(8, activation="relu", name="features")(h)
    outputs = keras.layers.Dense(5, activation="softmax", name="predictions")(h)
    return keras.Model(inputs, outputs, name="dense_only")


def two_inputs():
    image = keras.Input((16, 16, 3), name="image")
    extra = keras.Input((4,), name="extra")
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(image)
    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(h), extra])
    return keras.Model(
        [image, extra], keras.layers.Dense(5, activation="softmax")(h), name="two_inputs"
    )


def two_outputs():
    image = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(image)
    h = keras.layers.GlobalAveragePooling2D()(h)
    heads = [
        keras.layers.Dense(5, activation="softmax", name="shape")(h),
        keras.layers.Dense(2, activation="softmax", name="big")(h),
    ]
    return keras.Model(image, heads, name="two_outputs")


def fit_data(model):
    x = [X, np.zeros((len(X), 4), np.float32)] if len(model.inputs) > 1 else X
    y = [Y, Y % 2] if len(model.outputs) > 1 else Y
    return x, y


def batches():
    yield X_VAL, Y_VAL


def cnnvis(**kwargs):
    return lambda log_dir: CNNVisCallback(log_dir, options=kwargs.pop("options", LIGHT), **kwargs)


def blocked(log_dir):
    """A log dir under a regular file: cannot be created, even by root."""
    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, "file.txt"), "w") as f:
        f.write("not a directory")
    return os.path.join(log_dir, "file.txt", "logs")


U8_PROBES = np.round(X_VAL[:4] * 255).astype(np.uint8)

# (case, model, callback(log_dir), when, error, message). `when`: "construct" (raised by
# the constructor), "begin" (raised by fit before any epoch), "warn" (a warning; fit runs).
CASES = [
    (
        "unknown layer",
        tiny_cnn,
        cnnvis(validation_data=(X_VAL, Y_VAL), layers=["conv_z"]),
        "begin",
        ValueError,
        r"^No layer named 'conv_z' in model 'tiny_cnn'\. Available conv layers: 'conv_a' "
        r"\(Conv2D\), 'conv_b' \(Conv2D\)\. All layers: 'conv_a', 'pool', 'conv_b', 'gap', "
        r"'features', 'predictions'\.$",
    ),
    (
        "no conv layer",
        dense_only,
        cnnvis(validation_data=(X_VAL, Y_VAL)),
        "begin",
        ValueError,
        r"^Model 'dense_only' has no 2-D convolution layer; layers are: 'scale' \(Rescaling\), "
        r"'flatten' \(Flatten\), 'features' \(Dense\), 'predictions' \(Dense\)\.$",
    ),
    (
        "probe of the wrong shape",
        tiny_cnn,
        cnnvis(probe=np.zeros((4, 8, 8, 3), np.float32)),
        "begin",
        ValueError,
        r"^The probe images have shape \(4, 8, 8, 3\); model 'tiny_cnn' expects "
        r"\(N, 16, 16, 3\)\. Resize the images",
    ),
    (
        "probe of strings",
        tiny_cnn,
        cnnvis(probe=np.full((4, 16, 16, 3), "a")),
        "construct",
        ValueError,
        r"^The probe images have dtype <U1; pass real numbers \(float or integer pixels, "
        r"preprocessed the way the model expects\)\.$",
    ),
    (
        "probe of objects",
        tiny_cnn,
        cnnvis(probe=np.empty((4, 16, 16, 3), object)),
        "construct",
        ValueError,
        r"^The probe images have dtype object; pass real numbers",
    ),
    (
        "probe of booleans",
        tiny_cnn,
        cnnvis(probe=np.ones((4, 16, 16, 3), bool)),
        "construct",
        ValueError,
        r"^The probe images have dtype bool; pass real numbers",
    ),
    (
        "probe with NaN",
        tiny_cnn,
        cnnvis(probe=np.full((2, 16, 16, 3), np.nan, np.float32)),
        "begin",
        ValueError,
        r"^The probe images contain NaN or inf values",
    ),
    (
        "uint8 0-255 probes for a [0, 1] model",
        tiny_cnn,
        cnnvis(probe=U8_PROBES, include=("filters", "activations")),
        "warn",
        UserWarning,
        rf"^CNNVisCallback: the images range over \[0, {U8_PROBES.max()}\] \(0-255 pixels\?\) but the "
        rf"first convolution receives values in \[0, {U8_PROBES.max()}\]: model 'tiny_cnn' does "
        r"not scale them\. If it was trained on inputs in "
        r"\[0, 1\], pass the images divided by 255",
    ),
    (
        "empty probe set",
        tiny_cnn,
        cnnvis(probe=np.zeros((0, 16, 16, 3), np.float32)),
        "construct",
        ValueError,
        r"^The probe set is empty; pass at least one probe image\.$",
    ),
    (
        "empty validation data",
        tiny_cnn,
        cnnvis(validation_data=(X_VAL[:0], Y_VAL[:0])),
        "construct",
        ValueError,
        r"^validation_data holds no examples; pass some or leave it None\.$",
    ),
    (
        "validation data from a generator",
        tiny_cnn,
        cnnvis(validation_data=batches()),
        "construct",
        ValueError,
        r"^validation_data must be \(x, y\) numpy arrays or a tf\.data\.Dataset of \(x, y\) "
        r"batches; got generator\.$",
    ),
    (
        "masks that do not match the images",
        tiny_cnn,
        cnnvis(validation_data=(X_VAL, Y_VAL), masks=M_VAL[:5]),
        "construct",
        ValueError,
        r"^masks must hold one mask per validation image \(24\); got 5\.$",
    ),
    (
        "option a monitor does not take",
        tiny_cnn,
        cnnvis(options={"filters": {"colour": "red"}}),
        "construct",
        ValueError,
        r"^options\['filters'\] has \['colour'\], which FilterGridCallback does not take; its "
        r"arguments are \['log_dir', 'layers', ",
    ),
    (
        "multi-input model, images of both inputs",
        two_inputs,
        cnnvis(validation_data=([X_VAL, np.zeros((24, 4))], Y_VAL)),
        "construct",
        ValueError,
        r"^The validation images are 2 arrays \(inputs of a multi-input model\?\); "
        r"keras-cnnvis visualises models with one image input\.",
    ),
    (
        "multi-input model without an input choice",
        two_inputs,
        cnnvis(),
        "begin",
        ValueError,
        r"^Model 'two_inputs' has 2 inputs; keras-cnnvis explains single-input image models\. "
        r"Wrap it in a model with one image input\.$",
    ),
    (
        # Supported since the real-recipes work: the first output is explained.
        "multi-output model without an output choice",
        two_outputs,
        cnnvis(validation_data=(X_VAL, Y_VAL)),
        "warn",
        UserWarning,
        r"^CNNVisCallback: model 'two_outputs' has 2 outputs; the monitors explain the first\. "
        r"Pass output=<index> to choose another\.$",
    ),
    (
        "multi-output model, Grad-CAM without a target",
        two_outputs,
        lambda log_dir: GradCAMCallback(log_dir, X_VAL[:2]),
        "begin",
        ValueError,
        r"^Model 'two_outputs' has several outputs and no choice was made; pass a callable "
        r"target that picks one",
    ),
    (
        "validation label out of range",
        tiny_cnn,
        cnnvis(validation_data=(X_VAL, np.where(Y_VAL == 4, 7, Y_VAL))),
        "begin",
        ValueError,
        r"^Class index 7 is out of range for model 'tiny_cnn' with 5 classes; use indices "
        r"0\.\.4\.$",
    ),
    (
        "Occlusion target class out of range",
        tiny_cnn,
        lambda log_dir: OcclusionCallback(log_dir, X_VAL[:2], target=5),
        "begin",
        ValueError,
        r"^Class index 5 is out of range for model 'tiny_cnn' with 5 classes; use indices "
        r"0\.\.4\.$",
    ),
    (
        "class visualisation of a class out of range",
        tiny_cnn,
        lambda log_dir: ClassVisualizationCallback(log_dir, classes=[0, 7], steps=1),
        "begin",
        ValueError,
        r"^Class index 7 is out of range: model 'tiny_cnn' has 5 classes \(0\.\.4\)\.$",
    ),
    (
        "too few class names",
        tiny_cnn,
        cnnvis(validation_data=(X_VAL, Y_VAL), class_names=["circle", "square"]),
        "begin",
        ValueError,
        r"^2 class names were given for 5 classes; pass one name per model output\.$",
    ),
    (
        "log dir not writable",
        tiny_cnn,
        lambda log_dir: CNNVisCallback(blocked(log_dir), include=("filters",)),
        "begin",
        ValueError,
        r"^Log directory '.*file\.txt/logs/cnnvis' cannot be written \('.*file\.txt' is not a "
        r"writable directory\); pass a log_dir you can write to\.$",
    ),
]


class EpochsBegun(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def written(log_dir) -> list:
    return [
        os.path.join(root, f)
        for root, _, files in os.walk(log_dir)
        for f in files
        if "tfevents" in f
    ]


@pytest.mark.parametrize(
    "make_model, make_callback, when, error, message",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gives_a_clear_message_before_training(
    tmp_path, make_model, make_callback, when, error, message
):
    log_dir = str(tmp_path / "logs")
    if when == "construct":
        with pytest.raises(error, match=message):
            make_callback(log_dir)
        return
    model = make_model()
    model.compile("adam", ["sparse_categorical_crossentropy"] * len(model.outputs))
    x, y = fit_data(model)
    callback = make_callback(log_dir)
    begun = EpochsBegun()
    if when == "warn":
        with pytest.warns(error, match=message):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[begun, callback])
        assert begun.epochs == [0]  # a warning: training ran, and so did the monitors
        assert len(event_files(os.path.join(log_dir, "cnnvis"))) == 1
        return
    with pytest.raises(error, match=message):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[begun, callback])
    assert begun.epochs == []
    assert written(tmp_path) == []
