"""The graph of one traced forward pass: every layer and Keras operation a model calls, in
execution order through nested models, with the calls whose outputs it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_cnnvis.model.calls import recorded, wrap_calls
from keras_cnnvis.model.layers import is_layer, iter_layers


@dataclass
class Node:
    """One call in the traced forward pass.

    Attributes:
        path: the layer's or operation's path (nested models joined by `/`).
        kind: its class name (`"Conv2D"`, `"Add"`, ...).
        layer: the layer or operation.
        inputs: indices of the nodes whose outputs it reads (-1: the model input).
        shape: its output shape without the batch axis.
    """

    path: str
    kind: str
    layer: Any
    inputs: list
    shape: tuple

    @property
    def spatial(self) -> tuple | None:
        """`(height, width)` of a feature-map output, else None."""
        return tuple(self.shape[:2]) if len(self.shape) == 3 else None


def trace_graph(model: keras.Model, shape: tuple) -> list:
    """Runs one image through the model and records every leaf call as a `Node`.

    Layers and Keras operations are recorded in execution order, through nested models
    (which are transparent: their layers are recorded). A tensor made by an untracked
    operation in between (a subclassed model's own `tf` call) is matched by value, or
    linked to the last call.

    Args:
        model: a single-input image model.
        shape: the image shape `(height, width, channels)`.

    Returns:
        The list of `Node`s; `Node.inputs` index into it (-1: the model input).
    """
    infos = {id(i.layer): i for i in iter_layers(model, ops=True)}
    nodes: list[Node] = []
    producer: dict[int, tuple] = {}  # id(tensor) -> (tensor, node index)

    def find(t) -> int:
        index = recorded(t, producer, rtol=1e-3, atol=1e-5)
        if index is not None:
            return index
        return len(nodes) - 1 if nodes else -1  # an untracked op in between: the last call

    def make(layer, original):
        info = infos[id(layer)]
        container = isinstance(layer, keras.Model)

        def wrapped(*args, **kwargs):
            source = args[0] if is_layer(layer) and args else (args, kwargs)
            ins = [t for t in tf.nest.flatten(source) if tf.is_tensor(t) and t.shape.rank]
            srcs = [find(t) for t in ins if not isinstance(t, tf.Variable)]
            out = original(*args, **kwargs)
            outs = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
            if container or not outs:
                return out  # nested models are transparent: their layers are traced
            nodes.append(
                Node(info.path, type(layer).__name__, layer, srcs, tuple(outs[0].shape[1:]))
            )
            for t in outs:
                producer[id(t)] = (t, len(nodes) - 1)
            return out

        return wrapped

    with wrap_calls([i.layer for i in infos.values()], make):
        x = tf.constant(np.random.default_rng(0).random((1,) + tuple(shape)), tf.float32)
        producer[id(x)] = (x, -1)
        model(x, training=False)
    return nodes
