"""Trains the tiny CNN under a tf.distribute strategy with CNNVisCallback attached (run as a
subprocess by tests/test_distribute.py: devices must be configured before TF starts).

Usage: python robustness_distribute_script.py mirrored|multiworker <log_dir> <out_dir>

`mirrored`: MirroredStrategy over 2 logical CPU devices, `model.fit`.
`multiworker`: MultiWorkerMirroredStrategy from TF_CONFIG, a custom training loop that
drives the callback (Keras 3's `fit` cannot run this strategy: keras-team/keras#20585).
Writes `<out_dir>/conv_a.npy` (final kernel), `<out_dir>/predictions.npy` (validation
outputs) and prints one JSON line with the replica count and task.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

mode, log_dir, out_dir = sys.argv[1:4]
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robustness_models import LIGHT, shapes_data, tiny_cnn  # noqa: E402

from keras_cnnvis.callbacks import CNNVisCallback  # noqa: E402

(x, y), (x_val, y_val, m_val) = shapes_data()
if mode == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = tiny_cnn(compile=mode == "mirrored")
    optimizer = keras.optimizers.SGD(0.1)
    if mode != "mirrored":
        optimizer.build(model.trainable_variables)

callback = CNNVisCallback(
    log_dir,
    validation_data=(x_val, y_val),
    masks=m_val,
    n_probes=5,
    include=("filters", "health", "activations", "grad_cam", "confusion", "patches"),
    expensive_every=2,
    options=LIGHT,
    on_error="raise",
    budget=None,
)
if mode == "mirrored":
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
else:
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(batches))

    @tf.function
    def train_step(batch):
        def step(xb, yb):
            with tf.GradientTape() as tape:
                out = model(xb, training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, out))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce("MEAN", strategy.run(step, args=batch), axis=None)

    callback.set_model(model)
    callback.set_params({"epochs": 2, "steps": 3, "verbose": 0})
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for _ in range(3):
            loss = train_step(next(iterator))
        callback.on_epoch_end(epoch, {"loss": float(loss)})
    callback.on_train_end()

os.makedirs(out_dir, exist_ok=True)
np.save(os.path.join(out_dir, "conv_a.npy"), np.asarray(model.get_layer("conv_a").kernel))
np.save(os.path.join(out_dir, "predictions.npy"), np.asarray(model(x_val, training=False)))
resolver = getattr(strategy, "cluster_resolver", None)
print(
    json.dumps(
        {
            "replicas": int(strategy.num_replicas_in_sync),
            "task": None if resolver is None else [resolver.task_type, resolver.task_id],
        }
    ),
    flush=True,
)
