"""Model anatomy: the graph of one traced forward pass (layers and operations, through nested
models), each output's resolution, the main path, stages and their outputs, blocks, side
branches (squeeze-and-excitation gates, shortcut projections) and the feature map feeding the
head. The defaults of every monitor follow it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Sequence

import keras
import numpy as np

from keras_cnnvis.model.graph import Node, trace_graph  # noqa: F401 (Node: public here too)
from keras_cnnvis.model.layers import check_image_model, is_conv

L = keras.layers
_DOWNSAMPLE_ONLY = (L.MaxPooling2D, L.AveragePooling2D)
_NORMALISATION = (L.LayerNormalization, L.BatchNormalization, L.GroupNormalization)


@dataclass
class Stage:
    """A run of the main path at one resolution.

    Attributes:
        resolution: `(height, width)` of its feature maps.
        output: the path of its last main-path output.
        conv: the main-path convolution that produces `output` (for kernel monitors): the
            nearest one with a spatial kernel at the stage's resolution, else the 1x1 one.
        layers: paths of every node computed at this resolution, in order.
    """

    resolution: tuple
    output: str
    conv: str | None
    layers: list = field(default_factory=list)


@dataclass
class Anatomy:
    """The anatomy of a model (see `model_anatomy`).

    Attributes:
        nodes: every traced call, in execution order.
        feature_map: the path of the output of the last block before the head (the
            Grad-CAM layer), or None for a model without spatial outputs.
        stages: the main path's stages, first to last (only stages with a convolution).
        stage_outputs: the stages' outputs, ending at `feature_map`.
        stage_convs: the main-path convolution producing each stage output.
        blocks: outputs of the blocks between branch and merge points on the main path.
        side_branches: paths of squeeze-and-excitation gates and shortcut projections,
            skipped by default.
        input_shape: the image shape the model was traced with.
        main_path: paths of the main path's nodes, in order, ending at `feature_map`.
    """

    nodes: list
    feature_map: str | None
    stages: list
    blocks: list
    side_branches: list
    input_shape: tuple
    main_path: list = field(default_factory=list)

    @property
    def stage_outputs(self) -> list:
        return [s.output for s in self.stages]

    @property
    def stage_convs(self) -> list:
        return [s.conv for s in self.stages]

    def resolution(self, path: str) -> tuple | None:
        """The `(height, width)` of a traced path's output (None: not a feature map)."""
        for node in self.nodes:
            if node.path == path:
                return node.spatial
        return None

    def pick(self, n: int = 4) -> list:
        """Up to `n` layers to watch, from the first stage to `feature_map` (always
        kept): the stage outputs, spread; when there are fewer stages than `n`, the
        main path's convolutions and stage outputs, spread."""
        outs = self.stage_outputs
        pool = outs
        if len(outs) < n:
            convs = {node.path for node in self.nodes if is_conv(node.layer)}
            pool = [p for p in self.main_path if p in convs or p in outs]
            if outs:
                pool = pool[: pool.index(outs[-1]) + 1]
        if len(pool) <= n:
            return list(pool)
        idx = np.unique(np.round(np.linspace(0, len(pool) - 1, n)).astype(int))
        return [pool[i] for i in idx]

    def kernel_of(self, path: str) -> str | None:
        """The convolution whose kernels explain `path`: itself if it is one, else the
        main-path convolution producing its stage output."""
        for node in self.nodes:
            if node.path == path and is_conv(node.layer):
                return path
        for stage in self.stages:
            if stage.output == path:
                return stage.conv
        return None

    def table(self) -> str:
        """The anatomy as a text table: one row per stage, then the feature map."""
        rows = [("stage", "resolution", "output", "main conv", "layers")]
        for i, s in enumerate(self.stages):
            res = "x".join(str(v) for v in s.resolution)
            rows.append((str(i + 1), res, s.output, s.conv or "-", str(len(s.layers))))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"feature map: {self.feature_map}")
        lines.append(
            f"blocks: {len(self.blocks)}; side branches skipped: {len(self.side_branches)}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _per_pixel(spatial: tuple, image_size: tuple) -> bool:
    """Whether an output map is per-pixel (segmentation: at most 4x coarser than the
    image) rather than a backbone's low-resolution feature map."""
    return all(4 * s >= n for s, n in zip(spatial, image_size))


def _head_input(nodes: list, image_size: tuple) -> int | None:
    """The node whose feature map feeds the head: walk back from the output until the
    first spatial output, then past trailing pooling that only downsamples."""
    if not nodes:
        return None
    i = len(nodes) - 1
    if nodes[i].spatial is not None and not _per_pixel(nodes[i].spatial, image_size):
        # A feature extractor (include_top=False): its output is the feature map, past
        # trailing pooling that only downsamples (VGG16's block5_pool).
        while isinstance(nodes[i].layer, _DOWNSAMPLE_ONLY) and nodes[i].inputs:
            i = nodes[i].inputs[0]
        return i if i >= 0 else None
    if nodes[i].spatial is not None:  # a dense (per-pixel) output: before its classifier
        while nodes[i].spatial is not None and nodes[i].inputs and not is_conv(nodes[i].layer):
            i = nodes[i].inputs[0]
        if i >= 0 and is_conv(nodes[i].layer) and nodes[i].inputs and nodes[i].inputs[0] >= 0:
            return nodes[i].inputs[0]
        return i if i >= 0 else None
    while i >= 0 and nodes[i].spatial is None:
        if not nodes[i].inputs:
            return None
        i = nodes[i].inputs[0]
    while i >= 0 and isinstance(nodes[i].layer, _DOWNSAMPLE_ONLY) and nodes[i].inputs:
        i = nodes[i].inputs[0]
    return i if i >= 0 else None


def _ancestors(nodes: list, end: int) -> set:
    seen, stack = set(), [end]
    while stack:
        i = stack.pop()
        if i < 0 or i in seen:
            continue
        seen.add(i)
        stack.extend(nodes[i].inputs)
    return seen


def _dominators(nodes: list, keep: set, end: int) -> list:
    """Nodes every path from the input to `end` passes through, in order: after such a node
    runs, its output is the only live value the rest of the computation needs."""
    last_use = {}
    for j in sorted(keep):
        for i in nodes[j].inputs:
            last_use[i] = max(last_use.get(i, -1), j)
    out, live = [], {-1}
    for j in sorted(keep):
        live = {i for i in live if last_use.get(i, -1) > j} | ({j} if j != end else set())
        if j == end or live == {j}:
            out.append(j)
    return out


def _longest_path(nodes: list, keep: set, end: int) -> list:
    """The longest chain of calls from the input to `end` (in execution order)."""
    depth, back = {}, {}
    for j in sorted(keep):
        preds = [i for i in nodes[j].inputs if i in keep]
        best = max(preds, key=lambda i: depth[i], default=None)
        depth[j] = 1 + (depth[best] if best is not None else 0)
        back[j] = best
    path, j = [], end
    while j is not None:
        path.append(j)
        j = back[j]
    return path[::-1]


def _branch_length(nodes: list, start: int, stop: set) -> int:
    """How many nodes lie behind `start` before reaching one of `stop` (a dominator)."""
    length, i = 0, start
    while i >= 0 and i not in stop and length < 10_000:
        length += 1
        i = nodes[i].inputs[0] if nodes[i].inputs else -1
    return length


def _spatial_kernel(layer) -> bool:
    size = getattr(layer, "kernel_size", None)
    return size is not None and any(int(k) > 1 for k in size)


def _main_conv(nodes: list, i: int, doms: set) -> int | None:
    """The convolution on the main path that produces node `i`: back through per-position
    layers, and at a merge along its longest branch (not the shortcut). 1x1 convolutions
    (projections, expansions) show no spatial pattern, so the walk goes on, at the same
    resolution, to the nearest convolution with a spatial kernel; the 1x1 one when there
    is none."""
    resolution = nodes[i].spatial if i >= 0 else None
    first = None
    while i >= 0:
        node = nodes[i]
        if node.spatial != resolution and first is not None:
            break
        if is_conv(node.layer):
            if _spatial_kernel(node.layer):
                return i
            first = i if first is None else first
        if not node.inputs:
            break
        if len(node.inputs) > 1:
            # Not into a gate (squeeze-and-excitation: 1x1 pixels) or the shortcut.
            same = [k for k in node.inputs if k >= 0 and nodes[k].spatial == resolution]
            i = max(same or node.inputs, key=lambda k: _branch_length(nodes, k, doms - {i}))
        else:
            i = node.inputs[0]
    return first


def _side_branches(nodes: list, keep: set, doms: list) -> list:
    """Off the main path: gates computed from a global pooling (squeeze-and-excitation:
    outputs without space or of 1x1 pixels) and 1x1 shortcut projections."""
    dom = set(doms)
    main_res = {nodes[j].spatial for j in dom} - {None, (1, 1)}
    side = []
    for j in sorted(keep - dom):
        node = nodes[j]
        gate = bool(main_res) and node.spatial in (None, (1, 1))
        shortcut = (
            is_conv(node.layer)
            and tuple(getattr(node.layer, "kernel_size", ())) == (1, 1)
            and node.inputs
            and node.inputs[0] in dom
            and _is_shortcut(nodes, j, keep, dom)
        )
        if gate or shortcut:
            side.append(node.path)
    return side


def _is_shortcut(nodes: list, j: int, keep: set, dom: set) -> bool:
    """A 1x1 convolution from a dominator straight (through normalisation) into a merge
    whose other branch is longer."""
    i, steps = j, 0
    while steps < 3:
        users = [k for k in keep if i in nodes[k].inputs]
        if len(users) != 1:
            return False
        k = users[0]
        if len(nodes[k].inputs) > 1:
            others = [b for b in nodes[k].inputs if b != i]
            return any(_branch_length(nodes, b, dom) > steps + 1 for b in others)
        i, steps = k, steps + 1
    return False


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def model_anatomy(model: keras.Model, input_shape: Sequence[int] | None = None) -> Anatomy:
    """Reads the architecture of a model from one traced forward pass.

    Follows the real graph (Functional DAGs, Sequential, nested models with paths,
    subclassed models in traced call order; Keras operations such as the `x + y` of
    residual sums included). The main path is the chain of outputs every path from the
    input to the head passes through; a stage is a run of it at one resolution, and its
    output the last such node (after merges and activations). The feature map is the
    output of the last block before the head's global pooling or flatten, past trailing
    pooling that only downsamples (VGG16: `block5_conv3`); for a per-pixel output, the
    input of its final classifier convolution.

    Example:

    ```python
    anatomy = model_anatomy(keras.applications.ResNet50(weights=None))
    anatomy.feature_map      # "conv5_block3_out"
    print(anatomy)           # one row per stage
    ```

    Args:
        model: a single-input image model of any kind.
        input_shape: `(height, width, channels)` when the model does not fix its size.
            Defaults to None (the model's input shape).

    Returns:
        An `Anatomy` (cached per model and input shape).

    Raises:
        ValueError: for a model that does not take images or whose size is unknown.
    """
    shape = tuple(check_image_model(model, input_shape))
    if any(v is None for v in shape):
        raise ValueError(
            f"The input size of model '{model.name}' is not fixed ({shape}); pass "
            "input_shape=(height, width, channels)."
        )
    per_model = _CACHE.setdefault(model, {})
    if shape not in per_model:
        per_model[shape] = _anatomy(model, shape)
    return per_model[shape]


def _anatomy(model: keras.Model, shape: tuple) -> Anatomy:
    nodes = trace_graph(model, shape)
    end = _head_input(nodes, tuple(shape[:2]))
    if end is None:
        return Anatomy(nodes, None, [], [], [], shape)
    keep = _ancestors(nodes, end)
    doms = _dominators(nodes, keep, end)
    dom_set = set(doms)
    if nodes[-1].spatial is not None and _per_pixel(nodes[-1].spatial, shape[:2]):
        # A per-pixel output (U-Net): skip connections bypass the encoder, so the main
        # path is the longest path from the input, through every resolution.
        main = _longest_path(nodes, keep, end)
    else:
        main = doms
    stages: list[Stage] = []
    by_res: dict[tuple, list] = {}
    for j in sorted(keep):
        if nodes[j].spatial is not None:
            by_res.setdefault(nodes[j].spatial, []).append(j)
    last_at: dict[tuple, int] = {}
    for j in main:
        res = nodes[j].spatial
        if res is None:
            continue
        if not stages or stages[-1].resolution != res:
            stages.append(Stage(res, nodes[j].path, None))
        last_at[len(stages) - 1] = j
    main_set = set(main)
    for k, stage in enumerate(stages):
        # A normalisation that only opens the next (downsampling) block is not the
        # stage's output: take what it normalises (ConvNeXt's residual sum).
        j = last_at[k]
        while (
            isinstance(nodes[j].layer, _NORMALISATION)
            and nodes[j].inputs
            and nodes[j].inputs[0] in main_set
            and nodes[nodes[j].inputs[0]].spatial == stage.resolution
            and j != end
        ):
            j = nodes[j].inputs[0]
        stage.output = nodes[j].path
    for stage in stages:
        stage.layers = [nodes[j].path for j in by_res.get(stage.resolution, ())]
        out = next(j for j in main if nodes[j].path == stage.output)
        conv = _main_conv(nodes, out, dom_set)
        stage.conv = nodes[conv].path if conv is not None else None
    stages = [s for s in stages if any(is_conv(nodes[j].layer) for j in by_res[s.resolution])]
    stages = [s for s in stages if min(s.resolution) >= 2] or stages[-1:]
    if stages and stages[-1].output != nodes[end].path:
        stages[-1].output = nodes[end].path
    users: dict[int, int] = {}
    for j in keep:
        for i in nodes[j].inputs:
            users[i] = users.get(i, 0) + 1
    blocks = [nodes[j].path for j in doms if users.get(j, 0) >= 2 or j == end]
    side = _side_branches(nodes, keep, doms)
    main_path = [nodes[j].path for j in main]
    return Anatomy(nodes, nodes[end].path, stages, blocks, side, shape, main_path)
