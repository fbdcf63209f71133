"""A toy monitor for the background-worker tests: its model part reads a kernel, its background
part writes it, and can fail or block at a chosen step (used in-process and by
worker_kill_script.py)."""

from __future__ import annotations

import os
import time

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback


class ToyMonitor(MonitorCallback):
    """Logs `toy/<name>/kernel_sum` and `json/toy/<name>` (the step and the sum).

    Args:
        log_dir: the log directory.
        name: the tag part.
        fail_at: its background part raises from this step on. Defaults to None.
        block_at: its background part writes `marker` and sleeps for an hour from this
            step on. Defaults to None.
        marker: the file written when it blocks.
        pause: seconds its background part sleeps before writing (a slow renderer).
    """

    def __init__(self, log_dir, name="a", fail_at=None, block_at=None, marker=None, pause=0.0):
        super().__init__(log_dir)
        self.name, self.fail_at, self.block_at = name, fail_at, block_at
        self.marker, self.pause = marker, pause

    def log(self, step, logs=None):
        kernel = float(np.sum(self.model.layers[1].kernel.numpy()))  # the model part

        def finish():
            if self.fail_at is not None and step >= self.fail_at:
                raise IndexError(f"background bug at {step}")
            if self.block_at is not None and step >= self.block_at:
                with open(self.marker, "w") as f:
                    f.write(str(step))
                time.sleep(3600)
            time.sleep(self.pause)
            self.writer.scalar(f"toy/{self.name}/kernel_sum", kernel, step)
            self.writer.json(f"json/toy/{self.name}", {"step": step, "sum": kernel}, step, "toy")

        return finish
