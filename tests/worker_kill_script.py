"""Trains the tiny CNN with a toy monitor whose background part blocks from step 3 on while
filter grids and confusion matrices keep being queued behind it, so that
tests/test_callbacks_worker.py can SIGKILL the process with records in the queue.

Usage: python worker_kill_script.py <log_dir> <marker file>
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras  # noqa: E402
from robustness_models import shapes_data, tiny_cnn  # noqa: E402
from worker_helpers import ToyMonitor  # noqa: E402

from keras_cnnvis.callbacks import CNNVisCallback  # noqa: E402

log_dir, marker = sys.argv[1], sys.argv[2]
(x, y), (x_val, y_val, _) = shapes_data()
toy = ToyMonitor(log_dir, block_at=3, marker=marker)
cnnvis = CNNVisCallback(
    log_dir, validation_data=(x_val, y_val), include=("filters", "confusion"), budget=None
)


class Queued(keras.callbacks.Callback):
    """Writes `<marker>.queued` once at least 3 record sets wait behind the blocked one."""

    def on_epoch_end(self, epoch, logs=None):
        worker = toy.writer.worker
        if worker is not None and worker._queue.qsize() >= 3 and os.path.exists(marker):
            with open(marker + ".queued", "w") as f:
                f.write(str(epoch))


tiny_cnn().fit(x, y, epochs=100_000, batch_size=8, verbose=0, callbacks=[toy, cnnvis, Queued()])
