"""How `CNNVisCallback` builds its monitors for a model: what it checks first, the layers and
head it reads, the twin the monitors run on, and each monitor's constructor arguments from the
registry (`callbacks/monitors.py`).
"""

from __future__ import annotations

import os
import warnings

import keras

from keras_cnnvis.callbacks import plan
from keras_cnnvis.callbacks.base import (
    MonitorCallback,
    check_channels_last,
    check_writable,
    is_chief,
)
from keras_cnnvis.callbacks.monitors import REGISTRY, MonitorData
from keras_cnnvis.callbacks.twin import make_twin
from keras_cnnvis.model import find_layers, input_shape, relu_sites
from keras_cnnvis.model.head import model_head, output_count, output_view


class MonitorAssembly:
    """The building half of `CNNVisCallback` (a mixin: it reads the callback's settings and
    data attributes set in `CNNVisCallback.__init__`)."""

    def _data(self, layers: list, **more) -> MonitorData:
        return MonitorData(
            layers=layers,
            probe=self.probe,
            probe_labels=self.probe_labels,
            probe_masks=self.probe_masks,
            class_names=self.class_names,
            x_val=self.x_val,
            y_val=self.y_val,
            y_pixels=self.y_pixels,
            y_values=self.label_kind == "values",
            **more,
        )

    def _plan(self, model: keras.Model) -> MonitorData:
        """The monitors' data for `model`: layers from its anatomy, its head's target."""
        images = self.probe if self.probe is not None else self.x_val
        shape = None if images is None else tuple(images.shape[1:])
        layers, kernels, feature_map = plan.anatomy_layers(model, shape)
        if self.layers is not None:
            layers = kernels = list(self.layers)
        relu = bool(relu_sites(model))
        if not relu and "saliency" in self.names:
            self._skip(
                "saliency/guided_backprop",
                f"model '{model.name}' has no ReLU that guided backprop can override (e.g. "
                "swish or GELU activations); the saliency monitor logs saliency and "
                "integrated gradients",
            )
        return self._data(
            list(layers),
            head=self.head,
            kernel_layers=list(kernels),
            feature_map=feature_map,
            target=plan.task_target(self.head),
            relu=relu,
            faithfulness_every=self.expensive_every,
        )

    def _build(self, model: keras.Model) -> list[MonitorCallback]:
        data = self._plan(model)
        monitors, names = [], []
        for name in self.names:
            monitor = REGISTRY[name]
            reason = monitor.reason_to_skip(data)
            if reason is not None:
                self._skip(name, reason)
                continue
            kwargs = {
                **monitor.arguments(data),
                "log_dir": self.log_dir,
                "every_n_epochs": (1 if monitor.cheap else self.expensive_every) * monitor.period,
                # The state before training: only the cheap monitors record it (attributions,
                # embeddings, class images and accuracies of an untrained model are noise).
                "log_initial": monitor.cheap,
                "run_name": self.run_name,
                "on_error": self.on_error,
                **self.options.get(name, {}),
            }
            try:
                callback = monitor.callback_class(**kwargs)
            except ValueError as error:
                if name in self.options:  # the user's own options: theirs to fix
                    raise
                self._skip(name, str(error).rstrip("."))
                continue
            # Expensive monitors always end with a record of the trained model; cheap
            # ones too when the budget skipped their last epoch.
            callback.log_at_end = not monitor.cheap or self.budget.share is not None
            callback.gate = self._gate
            callback.finite_weights = self._finite
            callback.background = self.split_records
            if monitor.shares is not None and self._shared is not None:
                callback.share(self._shared, **monitor.shares(data))
            monitors.append(callback)
            names.append(name)
        self.names = names
        return monitors

    def _skip(self, name: str, reason: str) -> None:
        """Leaves a monitor out for this model, with one warning saying why."""
        self.not_applicable[name] = reason
        warnings.warn(
            f"CNNVisCallback: the '{name}' monitor is skipped: {reason}. The other monitors "
            "run.",
            UserWarning,
            stacklevel=3,
        )

    def _drop(self, monitor: MonitorCallback, name: str, reason: str) -> None:
        index = self.monitors.index(monitor)
        del self.monitors[index]
        del self.names[index]
        self._skip(name, reason)

    def _prepare(self) -> keras.Model:
        """Reads the model's head, checks what the user can fix, warns about pixel ranges;
        returns the single-output model the monitors explain."""
        model = self.model
        if self.output is None and output_count(model) > 1:
            warnings.warn(
                f"CNNVisCallback: model '{model.name}' has {output_count(model)} outputs; the "
                "monitors explain the first. Pass output=<index> to choose another.",
                UserWarning,
                stacklevel=3,
            )
        self.head = model_head(model, self.output or 0)
        view = output_view(model, self.output or 0)
        if self.head.task in ("regression", "dense") and self.label_kind == "classes":
            self.y_val = self.probe_labels = None  # regression targets are not classes
        if is_chief(model):
            check_writable(os.path.join(self.log_dir, self.run_name))
        check_channels_last(model)
        input_shape(model)  # raises for several inputs
        if set(self.names) - {"classes"}:
            find_layers(model, "all_conv")  # raises for a model without a convolution
        plan.check_user_inputs(view, self.head, self)
        plan.warn_pixel_range(model, self.x_val if self.x_val is not None else self.probe)
        return view

    @property
    def split_records(self) -> bool:
        """Whether each monitor splits its records itself (model part on the training
        thread, the rest in the worker): background records without a twin."""
        return self.background and self.twin_model is None

    def _target(self, model: keras.Model | None = None) -> keras.Model:
        """The model the monitors run on: the twin, else the explained view."""
        if self.twin_model is not None:
            return self.twin_model
        return self._view if self._view is not None else model

    def _bind(self, view: keras.Model) -> None:
        """Makes the twin of `view` (when records run in the background) and binds the
        shared pass to the model the monitors run on."""
        self.twin_model = self.twin_reason = None
        if self.background and self.use_twin and is_chief(view):
            images = self.probe if self.probe is not None else self.x_val
            self.twin_model, self.twin_reason = make_twin(view, images)
        for monitor in self.monitors:
            monitor.background = self.split_records
        if self._shared is not None:
            self._shared.bind(self._target())
