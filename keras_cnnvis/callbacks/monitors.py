"""The monitor registry: each monitor of `CNNVisCallback` is defined once here, with its callback,
its cost class, the data it needs and how its arguments come from the callback's data.

A new monitor is one callback file, one `register_monitor` entry and one test file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

NEEDS = ("probe", "validation", "labels")
"""What a monitor can need: probe images, validation images, labels of the validation images."""


@dataclass
class MonitorData:
    """What `CNNVisCallback` resolved before it builds its monitors.

    Attributes:
        layers: the watched layers (paths).
        probe: probe images `(N, H, W, C)` or None.
        probe_labels: their classes or None.
        probe_masks: their object masks or None.
        class_names: class names or None.
        x_val: validation images or None.
        y_val: their classes or None.
    """

    layers: list
    probe: np.ndarray | None = None
    probe_labels: np.ndarray | None = None
    probe_masks: np.ndarray | None = None
    class_names: list | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def has(self, need: str) -> bool:
        """Whether the data a monitor `need`s (one of `NEEDS`) is there."""
        return {
            "probe": self.probe is not None,
            "validation": self.x_val is not None,
            "labels": self.x_val is not None and self.y_val is not None,
        }[need]

    @property
    def probes(self) -> dict:
        """The probe arguments of the attribution callbacks."""
        return {
            "probe": self.probe,
            "labels": self.probe_labels,
            "masks": self.probe_masks,
            "class_names": self.class_names,
        }

    @property
    def validation(self) -> tuple | None:
        """`(x_val, y_val)` or None."""
        return None if self.x_val is None else (self.x_val, self.y_val)

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
    """

    name: str
    callback: str | type
    cheap: bool
    needs: tuple = ()
    arguments: Callable[[MonitorData], dict] = field(default=lambda data: {})

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


for _monitor in (
    Monitor("filters", "FilterGridCallback", True, (), lambda d: {"layers": d.layers}),
    Monitor(
        "health", "FilterHealthCallback", True, (), lambda d: {"layers": d.layers, "probe": d.probe}
    ),
    Monitor(
        "activations",
        "ActivationMapsCallback",
        True,
        ("probe",),
        lambda d: {"probe": _first(4)(d), "layers": d.layers},
    ),
    Monitor(
        "grad_cam",
        "GradCAMCallback",
        True,
        ("probe",),
        lambda d: {**d.probes, "methods": ("grad_cam", "layer_cam")},
    ),
    Monitor(
        "confusion",
        "ConfusionMatrixCallback",
        True,
        ("probe", "validation", "labels"),
        lambda d: {"validation_data": d.validation, "class_names": d.class_names},
    ),
    Monitor(
        "saliency",
        "SaliencyCallback",
        False,
        ("probe",),
        lambda d: {**d.probes, "methods": ("saliency", "guided_backprop", "integrated_gradients")},
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
    ),
    Monitor(
        "neighbors",
        "NearestNeighborsCallback",
        False,
        ("probe", "validation", "labels"),
        lambda d: d.halves(),
    ),
    Monitor(
        "classes",
        "ClassVisualizationCallback",
        False,
        (),
        lambda d: {"class_names": d.class_names},
    ),
):
    register_monitor(_monitor)


__all__: Sequence[str] = (
    "Monitor",
    "MonitorData",
    "NEEDS",
    "REGISTRY",
    "monitor_names",
    "register_monitor",
    "unregister_monitor",
)
