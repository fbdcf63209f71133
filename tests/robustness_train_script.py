"""Trains the tiny CNN "forever" with CNNVisCallback logging every epoch, so that
tests/test_callbacks_resilience.py can SIGKILL it mid-training and read back what was written.

Usage: python robustness_train_script.py <log_dir>
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robustness_models import CLASSES, shapes_data, tiny_cnn  # noqa: E402

from keras_cnnvis.callbacks import CNNVisCallback  # noqa: E402

(x, y), (x_val, y_val, m_val) = shapes_data()
callback = CNNVisCallback(
    sys.argv[1],
    validation_data=(x_val, y_val),
    masks=m_val,
    class_names=CLASSES,
    n_probes=5,
    include=("filters", "health", "activations", "grad_cam", "confusion"),
    on_error="raise",
    budget=None,
)
print("training", flush=True)
tiny_cnn().fit(x, y, epochs=100_000, batch_size=8, verbose=0, callbacks=[callback])
