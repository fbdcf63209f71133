"""The architectures people fine-tune (keras.applications, random weights, small inputs, no
downloads), each nested as a frozen base under a new head and fit for one epoch with
CNNVisCallback and every monitor on schedule: every monitor writes its records, none is
disabled, and the automatic layers are the base's stage outputs."""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import MONITOR_TAGS
from eventfiles import read_run
from keras_cnnvis import datasets
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.model.anatomy import model_anatomy

A, L = keras.applications, keras.layers
BASES = {
    "ResNet50": (A.ResNet50, 64),
    "MobileNetV2": (A.MobileNetV2, 96),
    "EfficientNetB0": (A.EfficientNetB0, 64),
    "ConvNeXtTiny": (A.ConvNeXtTiny, 64),
    "VGG16": (A.VGG16, 64),
    "DenseNet121": (A.DenseNet121, 64),
    "Xception": (A.Xception, 71),
}
LIGHT = {
    "embedding": {"methods": ("pca",)},
    "classes": {"steps": 1, "size": 32},
    "saliency": {"steps": 2},
    "occlusion": {"patch": 24, "stride": 24},
    "patches": {"k": 2, "channels": 4},
}
# Every monitor but the Network page and robustness (each tested on its own).
TAGS = {m: t for m, t in MONITOR_TAGS.items() if m not in ("network", "robustness")}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BASES))
def test_transfer_model_logs_every_monitor(tmp_path, name):
    build, size = BASES[name]
    base = build(weights=None, include_top=False, input_shape=(size, size, 3))
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = L.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, L.Dense(5, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y, _ = datasets.shapes(24, size=size, seed=0)
    x = x.astype(np.float32) * 255
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x[:12], y[:12]),
        n_probes=2,
        budget=None,
        options=LIGHT,
        include=list(TAGS),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[12:], y[12:], epochs=1, batch_size=12, verbose=0, callbacks=[cb])
    failed = [str(w.message) for w in caught if "failed at step" in str(w.message)]
    assert not failed, failed
    assert not [m for m in cb.monitors if m.disabled]
    assert cb.names == list(TAGS), cb.not_applicable
    run = read_run(os.path.join(str(tmp_path), "cnnvis"))
    for monitor, prefix in TAGS.items():
        assert any(t.startswith(prefix) for t in run), (monitor, sorted(run))
    anatomy = model_anatomy(base)
    prefix = base.name + "/"
    watched = {t[len("activations/") :] for t in run if t.startswith("activations/")}
    assert watched <= {prefix + p for p in anatomy.stage_outputs}
    assert prefix + anatomy.feature_map in watched
    grad_cam = run["json/attribution/grad_cam"][-1].value
    assert grad_cam["layer"] == prefix + anatomy.feature_map
