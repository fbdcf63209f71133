"""SaliencyCallback: logs gradient-based attribution overlays (saliency, SmoothGrad,
integrated gradients, guided backprop, deconvnet, gradient x input) of probe images.
"""

from __future__ import annotations

from typing import Any, Sequence

from keras_cnnvis.attribution.registry import names
from keras_cnnvis.callbacks.attribution_base import AttributionCallback


def __getattr__(name: str):
    if name == "GRADIENT_METHODS":  # derived from the registry, so it includes new methods
        return names("gradient")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SaliencyCallback(AttributionCallback):
    """Logs gradient-based attribution maps of fixed probe images every few epochs.

    Writes, per chosen method, `attribution/<method>` overlays (one per probe),
    `json/attribution/<method>` raw maps (at most 64x64) and, with masks,
    `localization/<method>/energy_in_mask` and `/pointing_game`, with `faithfulness`
    `faithfulness/<method>/...` scores; plus `probes/images`.

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
            `"gradient_x_input"` (or any method registered with `family="gradient"`, see
            `attribution.registry`). Defaults to `("saliency",)`.
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
        faithfulness: False (off), True (deletion and insertion areas and MuFidelity of
            each method's maps with a random-map reference, at the settings in
            `attribution_base.FAITHFULNESS`), or a dict of `faithfulness_scores` settings
            over those. Logs `faithfulness/<method>/deletion_auc`, `/insertion_auc`,
            `/mu_fidelity` and `faithfulness/random/...`. Defaults to False.

    Raises:
        ValueError: for an unknown method, bad SmoothGrad/IG settings or an unknown
            faithfulness setting (here); at `on_train_begin`, for probes that do not fit
            the model, labels or masks that do not match them, guided methods on a model
            without ReLU, or faithfulness settings that do not fit the probes.
    """

    family = "gradient"

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
        self.offer(
            methods, n_samples=n_samples, noise_level=noise_level, steps=steps, baseline=baseline
        )
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int; got {steps!r}.")
        if not noise_level >= 0:
            raise ValueError(f"noise_level must be >= 0; got {noise_level!r}.")
