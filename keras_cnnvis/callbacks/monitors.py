"""The monitor registry: each monitor of `CNNVisCallback` is defined once here, with its callback,
its cost class, the data it needs and how its arguments come from the callback's data.

A new monitor is one callback file, one `register_monitor` entry and one test file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

NEEDS = ("probe", "validation", "labels")
"""What a monitor can need: probe images, validation images, labels of the validation images."""


@dataclass
class MonitorData:
    """What `CNNVisCallback` resolved before it builds its monitors.

    Attributes:
        layers: the watched layers (paths): stage outputs of the model's anatomy unless
            the user chose them.
        probe: probe images `(N, H, W, C)` or None.
        probe_labels: their classes or None.
        probe_masks: their object masks or None.
        class_names: class names or None.
        x_val: validation images or None.
        y_val: their classes (one per example) or None.
        y_pixels: their per-pixel classes `(N, H, W)` (segmentation) or None.
        y_values: whether their labels are regression targets (not classes).
        head: the explained output (`keras_cnnvis.model.head.Head`) or None.
        kernel_layers: the layers whose kernels the weight monitors show (the main-path
            convolution producing each watched stage). Defaults to `layers`.
        feature_map: the Grad-CAM layer (the feature map feeding the head) or None.
        target: the attribution target for heads without per-example classes, or None.
        relu: whether the model has ReLUs that guided backprop can override.
        faithfulness_every: epochs between the faithfulness scores of the Grad-CAM
            monitor (the expensive monitors' schedule). Defaults to 1.
    """

    layers: list
    probe: np.ndarray | None = None
    probe_labels: np.ndarray | None = None
    probe_masks: np.ndarray | None = None
    class_names: list | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    y_pixels: np.ndarray | None = None
    y_values: bool = False
    head: Any = None
    kernel_layers: list | None = None
    feature_map: Any = None
    target: Any = None
    relu: bool = True
    faithfulness_every: int = 1

    def has(self, need: str) -> bool:
        """Whether the data a monitor `need`s (one of `NEEDS`) is there."""
        return {
            "probe": self.probe is not None,
            "validation": self.x_val is not None,
            "labels": self.x_val is not None
            and (self.y_val is not None or self.y_pixels is not None or self.y_values),
        }[need]

    @property
    def probes(self) -> dict:
        """The probe arguments of the attribution callbacks."""
        out = {
            "probe": self.probe,
            "labels": self.probe_labels,
            "masks": self.probe_masks,
            "class_names": self.class_names,
        }
        if self.target is not None:
            out["target"] = self.target
        return out

    @property
    def kernels(self) -> list:
        """The layers of the weight monitors."""
        return self.layers if self.kernel_layers is None else self.kernel_layers

    @property
    def validation(self) -> tuple | None:
        """`(x_val, labels)` with per-example or per-pixel labels, or None."""
        if self.x_val is None:
            return None
        return (self.x_val, self.y_val if self.y_pixels is None else self.y_pixels)

    def rows(self, *parts: str) -> dict:
        """Row indices of the validation images: `"all"`, or the two halves of `halves`
        (`"query"`: the first, `"reference"`: the second)."""
        n = 0 if self.x_val is None else len(self.x_val)
        half = n // 2
        ranges = {"all": (0, n), "query": (0, half), "reference": (half, n)}
        return {part: np.arange(*ranges[part]) for part in parts}

    def halves(self) -> dict:
        """The validation data split in two: the second half is searched for the first's
        nearest neighbours."""
        if self.x_val is None or self.y_val is None:
            return {"reference_data": None, "query_data": None}
        half = len(self.x_val) // 2
        return {
            "reference_data": (self.x_val[half:], self.y_val[half:]),
            "query_data": (self.x_val[:half], self.y_val[:half]),
        }


@dataclass(frozen=True)
class Monitor:
    """One monitor of `CNNVisCallback`.

    Attributes:
        name: the monitor's name in `include=`, `exclude=` and `options=`.
        callback: its callback class, or the class's name in `keras_cnnvis.callbacks`
            (imported on first use).
        cheap: cheap monitors log every epoch and record the state before training;
            expensive ones every `expensive_every` epochs and at the end.
        needs: data it cannot run without (see `NEEDS`).
        arguments: `fn(MonitorData) -> dict` of the callback's constructor arguments
            (before the schedule and the user's options).
        applies: `fn(MonitorData) -> reason or None`: why the monitor cannot apply to
            this (valid) model, e.g. a class-based monitor on a regression head. The
            monitor is then skipped with one warning giving the reason. Defaults to None.
        shares: `fn(MonitorData) -> {role: rows}`: the rows of the validation images each
            of the monitor's image sets is, for monitors that read the forward pass
            shared over them (`callbacks.shared.SharedPass`, through the callback's
            `share`). Defaults to None (the monitor runs its own passes).
        period: the monitor logs every `period` times its cost class's interval (cheap:
            every epoch, expensive: `expensive_every`). Defaults to 1.
    """

    name: str
    callback: str | type
    cheap: bool
    needs: tuple = ()
    arguments: Callable[[MonitorData], dict] = field(default=lambda data: {})
    applies: Callable[[MonitorData], str | None] | None = None
    shares: Callable[[MonitorData], dict] | None = None
    period: int = 1

    def reason_to_skip(self, data: MonitorData) -> str | None:
        """Why this monitor cannot run on `data`'s model, or None."""
        return None if self.applies is None else self.applies(data)

    @property
    def callback_class(self) -> type:
        """The callback class (imported on first use)."""
        if isinstance(self.callback, type):
            return self.callback
        from keras_cnnvis import callbacks

        return getattr(callbacks, self.callback)

    def available(self, data: MonitorData) -> bool:
        """Whether everything the monitor needs is in `data`."""
        return all(data.has(need) for need in self.needs)


REGISTRY: dict[str, Monitor] = {}
"""Monitor name -> `Monitor`, cheap ones first, in registration order."""


def register_monitor(monitor: Monitor) -> Monitor:
    """Adds (or replaces) a monitor of `CNNVisCallback`.

    Example:

    ```python
    register_monitor(Monitor("my_maps", "MyMapsCallback", cheap=True, needs=("probe",),
                             arguments=lambda data: {"probe": data.probe}))
    ```

    Args:
        monitor: the `Monitor`.

    Returns:
        The monitor.

    Raises:
        ValueError: for a need that is not one of `NEEDS`.
    """
    unknown = [n for n in monitor.needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"Monitor '{monitor.name}' needs {unknown}; needs are some of {NEEDS}.")
    REGISTRY[monitor.name] = monitor
    order = sorted(REGISTRY.values(), key=lambda m: not m.cheap)  # stable: cheap first
    REGISTRY.clear()
    REGISTRY.update((m.name, m) for m in order)
    return monitor


def unregister_monitor(name: str) -> None:
    """Removes a monitor added with `register_monitor` (e.g. at the end of a test)."""
    REGISTRY.pop(name, None)


def monitor_names(cheap: bool | None = None) -> tuple:
    """The registered monitor names, all or only the cheap (True) or expensive (False)."""
    return tuple(n for n, m in REGISTRY.items() if cheap is None or m.cheap == cheap)


def _first(n: int) -> Callable:
    return lambda data: None if data.probe is None else data.probe[:n]


def _task(data: MonitorData) -> str:
    return "" if data.head is None else data.head.task


def _needs_classes(data: MonitorData) -> str | None:
    if data.head is not None and not data.head.has_classes:
        return f"the model is a {data.head.describe()}: it predicts no classes"
    if data.y_values and data.y_val is None and data.y_pixels is None:
        return "the validation labels are regression targets, not classes"
    return None


def _dense(data: MonitorData) -> bool:
    return data.head is not None and data.head.dense


def _needs_example_classes(data: MonitorData) -> str | None:
    reason = _needs_classes(data)
    if reason is not None:
        return reason
    if _dense(data):
        return (
            f"the model is a {data.head.describe()}: this monitor colours and scores one "
            "class per image"
        )
    if data.y_val is None and data.x_val is not None:
        return "the validation labels are not one class per image"
    return None


def _needs_class_outputs(data: MonitorData) -> str | None:
    if _dense(data):
        return f"the model is a {data.head.describe()}: no class output to maximise"
    return _needs_classes(data)


def _saliency_methods(data: MonitorData) -> tuple:
    """Guided backprop needs ReLUs to override (EfficientNet's swish has none)."""
    if data.relu:
        return ("saliency", "guided_backprop", "integrated_gradients")
    return ("saliency", "integrated_gradients")


def _grad_cam(data: MonitorData) -> dict:
    # Faithfulness on: 111 forward passes per probe for both methods (attribution_base.
    # FAITHFULNESS): measured on the demo (8 probes, 64 px) 0.2-0.25 s of a 0.25 s record
    # (the maps alone: 0.03 s), so the scores follow the expensive monitors' schedule
    # (`faithfulness_every`, set by CNNVisCallback) while the maps are logged every epoch;
    # like the expensive monitors, not on the untrained model.
    out = {
        **data.probes,
        "methods": ("grad_cam", "layer_cam"),
        "faithfulness": {"every_n_epochs": data.faithfulness_every, "log_initial": False},
    }
    if data.feature_map is not None:
        out["layer"] = data.feature_map
    return out


for _monitor in (
    Monitor("filters", "FilterGridCallback", True, (), lambda d: {"layers": d.kernels}),
    Monitor(
        "health",
        "FilterHealthCallback",
        True,
        (),
        lambda d: {"layers": d.kernels, "probe": d.probe},
    ),
    Monitor(
        "activations",
        "ActivationMapsCallback",
        True,
        ("probe",),
        lambda d: {"probe": _first(4)(d), "layers": d.layers},
    ),
    Monitor("grad_cam", "GradCAMCallback", True, ("probe",), _grad_cam),
    Monitor(
        "confusion",
        "ConfusionMatrixCallback",
        True,
        ("probe", "validation", "labels"),
        lambda d: {"validation_data": d.validation, "class_names": d.class_names},
        _needs_classes,
        shares=lambda d: {"x": d.rows("all")["all"]},
    ),
    Monitor(
        "network",
        "NetworkCallback",
        True,
        ("probe",),
        lambda d: {"probe": _first(2)(d), "class_names": d.class_names},
    ),
    Monitor(
        "saliency",
        "SaliencyCallback",
        False,
        ("probe",),
        lambda d: {**d.probes, "methods": _saliency_methods(d)},
    ),
    Monitor("occlusion", "OcclusionCallback", False, ("probe",), lambda d: d.probes),
    Monitor(
        "patches",
        "MaxActivatingPatchesCallback",
        False,
        ("probe", "validation"),
        lambda d: {"data": d.x_val, "layers": d.layers},
    ),
    Monitor(
        "embedding",
        "EmbeddingCallback",
        False,
        ("probe", "validation", "labels"),
        lambda d: {"data": d.validation, "class_names": d.class_names},
        _needs_example_classes,
        shares=lambda d: {"data": d.rows("all")["all"]},
    ),
    Monitor(
        "neighbors",
        "NearestNeighborsCallback",
        False,
        ("probe", "validation", "labels"),
        lambda d: d.halves(),
        _needs_example_classes,
        shares=lambda d: d.rows("query", "reference"),
    ),
    Monitor(
        "classes",
        "ClassVisualizationCallback",
        False,
        (),
        lambda d: {"class_names": d.class_names},
        _needs_class_outputs,
    ),
):
    register_monitor(_monitor)


def _robustness_applies(data: MonitorData) -> str | None:
    """Accuracy under corruption needs one class per image and pixels the corruptions can
    read ([0, 1] or 0..255)."""
    from keras_cnnvis.callbacks.robustness import pixel_range_reason

    if _needs_classes(data) is None and _task(data) in ("multilabel", "segmentation", "dense"):
        return (
            f"the model is a {data.head.describe()}: accuracy under corruption counts one "
            "class per image"
        )
    channels = None if data.x_val is None else data.x_val.shape[-1]
    if channels not in (None, 1, 3):
        return f"the images have {channels} channels; corruptions take grayscale or RGB images"
    return _needs_example_classes(data) or pixel_range_reason(data.x_val)


register_monitor(
    Monitor(
        "robustness",
        "RobustnessCallback",
        cheap=False,
        needs=("validation", "labels"),
        arguments=lambda d: {
            "validation_data": (d.x_val, d.y_val),
            "class_names": d.class_names,
            "probe": d.probe,
            "probe_labels": d.probe_labels,
        },
        applies=_robustness_applies,
        # 3000 corrupted images and 640 attack steps per record (1.2 s on the demo CNN, as
        # much as the other expensive monitors together): every other expensive record.
        period=2,
    )
)

__all__: Sequence[str] = (
    "Monitor",
    "MonitorData",
    "NEEDS",
    "REGISTRY",
    "monitor_names",
    "register_monitor",
    "unregister_monitor",
)
