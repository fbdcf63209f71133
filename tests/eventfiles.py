"""Reads event files back with TensorBoard's own reader, for assertions in tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import cv2
import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util


@dataclass
class Record:
    step: int
    plugin: str
    value: object  # images: list of uint8 arrays; cnnvis: parsed JSON; scalars: float


def read_run(run_dir: str) -> dict[str, list[Record]]:
    """All records of a run directory, by tag, decoded (PNG -> arrays, JSON -> objects)."""
    acc = pea.EventAccumulator(run_dir, size_guidance={pea.TENSORS: 0})
    acc.Reload()
    out: dict[str, list[Record]] = {}
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        records = []
        for event in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "images":
                w, h = int(arr[0]), int(arr[1])
                imgs = [
                    cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) for b in arr[2:]
                ]
                for img in imgs:
                    assert img.shape[:2] == (h, w)
                value = imgs
            elif plugin == "cnnvis":
                value = json.loads(arr.item().decode("utf-8"))
            else:
                value = float(arr)
            records.append(Record(int(event.step), plugin, value))
        out[tag] = records
    return out


def event_files(run_dir: str) -> list[str]:
    """The event files in a directory (not recursive)."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(f for f in os.listdir(run_dir) if "tfevents" in f)
