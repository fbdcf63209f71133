"""SaliencyCallback: logs gradient-based attribution overlays (saliency, SmoothGrad,
integrated gradients, guided backprop, deconvnet, gradient x input) of probe images.
"""

from __future__ import annotations

from typing import Any, Sequence

from keras_cnnvis.callbacks.attribution_base import AttributionCallback, method_names

GRADIENT_METHODS = (
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "guided_backprop",
    "deconvnet",
    "gradient_x_input",
)


class SaliencyCallback(AttributionCallback):
    """Logs gradient-based attribution maps of fixed probe images every few epochs.

    Writes, per chosen method, `attribution/<method>` overlays (one per probe),
    `json/attribution/<method>` raw maps (at most 64x64) and, with masks,
    `localization/<method>/energy_in_mask` and `/pointing_game`; plus `probes/images`.

    Example:

    ```python
    cb = SaliencyCallback("runs/exp1", x_val[:8], labels=y_val[:8],
                          methods=["saliency", "smoothgrad", "guided_backprop"])
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        probe: float `(N, H, W, C)` probe images in the model's input format.
        labels: `(N,)` true classes. Defaults to None.
        masks: `(N, H, W)` object masks (localisation scalars). Defaults to None.
        class_names: class names for the dashboard. Defaults to None.
        methods: one or more of `"saliency"`, `"smoothgrad"` (SmoothGrad on saliency),
            `"integrated_gradients"`, `"guided_backprop"`, `"deconvnet"`,
            `"gradient_x_input"`. Defaults to `("saliency",)`.
        n_samples: SmoothGrad's noisy copies. Defaults to 20.
        noise_level: SmoothGrad's noise, a fraction of the image range. Defaults to 0.15.
        steps: integrated-gradients steps. Defaults to 32.
        baseline: integrated-gradients baseline (see `make_baseline`).
            Defaults to `"zeros"`.
        target: None (labels if given, else the prediction), `"predicted"`, `"label"`, a
            class index, a callable score or a hidden unit. Defaults to None.
        alpha: heatmap weight in the overlays. Defaults to 0.5.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: for an unknown method or bad SmoothGrad/IG settings (here); at
            `on_train_begin`, for probes that do not fit the model, labels or masks that
            do not match them, or guided methods on a model without ReLU.
    """

    def __init__(
        self,
        log_dir: str,
        probe: Any,
        labels: Any = None,
        masks: Any = None,
        class_names: Sequence[str] | None = None,
        methods: str | Sequence[str] = ("saliency",),
        n_samples: int = 20,
        noise_level: float = 0.15,
        steps: int = 32,
        baseline: Any = "zeros",
        target: Any = None,
        alpha: float = 0.5,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
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
        )
        names = method_names(methods, GRADIENT_METHODS, "SaliencyCallback")
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int; got {steps!r}.")
        if not noise_level >= 0:
            raise ValueError(f"noise_level must be >= 0; got {noise_level!r}.")
        self.method_names = names
        self.options = {
            "smoothgrad": {"n_samples": n_samples, "noise_level": noise_level},
            "integrated_gradients": {"steps": steps, "baseline": baseline},
        }

    def setup(self) -> None:
        from keras_cnnvis import attribution as A
        from keras_cnnvis.model import relu_sites

        super().setup()
        guided = [m for m in self.method_names if m in ("guided_backprop", "deconvnet")]
        if guided and not relu_sites(self.model):
            raise ValueError(
                f"{guided[0]} needs ReLU activations; model '{self.model.name}' has none "
                "that can be overridden (activation='relu' or ReLU layers). Choose "
                "another method."
            )
        self.methods = [
            (name, A.get_method(name), dict(self.options.get(name, {})))
            for name in self.method_names
        ]
