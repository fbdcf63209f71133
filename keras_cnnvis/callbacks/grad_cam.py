"""GradCAMCallback: logs Grad-CAM-family overlays of probe images over training, so you can
watch the class evidence move onto the object (or see it stay on the background).
"""

from __future__ import annotations

from typing import Any, Sequence

from keras_cnnvis.attribution.registry import names
from keras_cnnvis.callbacks.attribution_base import AttributionCallback


def __getattr__(name: str):
    if name == "CAM_METHODS":  # derived from the registry, so it includes new methods
        return names("cam")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GradCAMCallback(AttributionCallback):
    """Logs Grad-CAM (and optionally Grad-CAM++, LayerCAM, Guided Grad-CAM, Score-CAM, CAM)
    overlays of fixed probe images every few epochs.

    Writes into `<log_dir>/cnnvis`, per method: the images `attribution/<method>` (one
    overlay per probe), the record `json/attribution/<method>` (maps at most 64x64 for
    the cnnvis tab), the scalars `localization/<method>/energy_in_mask` and
    `/pointing_game` when masks are given, `faithfulness/<method>/...` scores with
    `faithfulness`; and the probes as `probes/images`.

    Example:

    ```python
    cb = GradCAMCallback("runs/exp1", x_val[:8], labels=y_val[:8], masks=m_val[:8])
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        probe: float `(N, H, W, C)` probe images in the model's input format.
        labels: `(N,)` true classes. Defaults to None.
        masks: `(N, H, W)` object masks (localisation scalars). Defaults to None.
        class_names: class names for the dashboard. Defaults to None.
        layer: the layer (name, nested path, `"last_conv"` or `"feature_map"`: the output
            of the last block before the head, see `model_anatomy`). Defaults to
            `"feature_map"`.
        methods: one or more of `"grad_cam"`, `"grad_cam_plus_plus"`, `"layer_cam"`,
            `"guided_grad_cam"`, `"score_cam"`, `"cam"` (or any method registered with
            `family="cam"`, see `attribution.registry`). Defaults to `("grad_cam",)`.
        target: None (labels if given, else the prediction), `"predicted"`, `"label"`, a
            class index, a callable score or a hidden unit. Defaults to None.
        alpha: heatmap weight in the overlays. Defaults to 0.5.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.
        faithfulness: False (off), True (deletion and insertion areas and MuFidelity of
            each method's maps with a random-map reference, at the settings in
            `attribution_base.FAITHFULNESS`), or a dict of `faithfulness_scores` settings
            over those. Logs `faithfulness/<method>/deletion_auc`, `/insertion_auc`,
            `/mu_fidelity` and `faithfulness/random/...`. Defaults to False.

    Raises:
        ValueError: for an unknown method or faithfulness setting (here); at
            `on_train_begin`, for an unknown layer, a layer without spatial output,
            probes that do not fit the model, labels/masks that do not match the probes,
            or faithfulness settings that do not fit them.
    """

    family = "cam"

    def __init__(
        self,
        log_dir: str,
        probe: Any,
        labels: Any = None,
        masks: Any = None,
        class_names: Sequence[str] | None = None,
        layer: Any = "feature_map",
        methods: str | Sequence[str] = ("grad_cam",),
        target: Any = None,
        alpha: float = 0.5,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
        faithfulness: bool | dict = False,
    ):
        super().__init__(
            log_dir,
            probe,
            labels,
            masks,
            class_names,
            target,
            alpha,
            every_n_epochs,
            log_initial,
            run_name,
            on_error,
            faithfulness=faithfulness,
        )
        self.layer = layer
        self.offer(methods, layer=layer)
