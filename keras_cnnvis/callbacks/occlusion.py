"""OcclusionCallback: logs occlusion-sensitivity overlays of probe images over training (the
score drop when a grey patch hides each region; gradient-free).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_cnnvis.attribution.occlusion import occluder
from keras_cnnvis.callbacks.attribution_base import AttributionCallback


class OcclusionCallback(AttributionCallback):
    """Logs occlusion maps of fixed probe images every few epochs.

    Each logged step runs (patch positions x probes) forward passes, batched. Writes
    `attribution/occlusion` overlays, `json/attribution/occlusion` raw maps (at most
    64x64) and, with masks, `localization/occlusion/energy_in_mask` and
    `/pointing_game`, with `faithfulness` the `faithfulness/occlusion/...` scores; plus
    `probes/images`.

    Example:

    ```python
    cb = OcclusionCallback("runs/exp1", x_val[:8], labels=y_val[:8], patch=8, stride=4,
                           fill=x_train.mean(axis=(0, 1, 2)), every_n_epochs=2)
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        probe: float `(N, H, W, C)` probe images in the model's input format.
        labels: `(N,)` true classes. Defaults to None.
        masks: `(N, H, W)` object masks (localisation scalars). Defaults to None.
        class_names: class names for the dashboard. Defaults to None.
        patch: patch size, int or `(height, width)`. Defaults to None (an eighth of the
            probes' side, at least 8: 8 up to 64 pixels, 28 at 224).
        stride: step between patches. Defaults to None (half the patch).
        fill: patch value: `"mean"` (the probes' mean colour), a number or a colour;
            pass the training set's mean colour for the classic setting.
            Defaults to `"mean"`.
        batch_size: occluded copies per compiled call. Defaults to None (as many as
            keep a batch under `model.compiled.batch_size_for`'s byte budget: 256 for the
            demo CNN, 25 for a 224-pixel ResNet50).
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
        ValueError: for an unknown faithfulness setting (here); at `on_train_begin`, for
            a patch larger than the probes, a bad fill, probes that do not fit the model,
            labels/masks that do not match them, or faithfulness settings that do not fit
            them.
    """

    family = "occlusion"

    def __init__(
        self,
        log_dir: str,
        probe: Any,
        labels: Any = None,
        masks: Any = None,
        class_names: Sequence[str] | None = None,
        patch: int | tuple | None = None,
        stride: int | tuple | None = None,
        fill: Any = "mean",
        batch_size: int | None = None,
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
        self.patch, self.stride = occluder(np.shape(probe), patch, stride)
        self.fill = fill
        self.batch_size = None if batch_size is None else int(batch_size)
        self.offer(
            "occlusion",
            patch=self.patch,
            stride=self.stride,
            fill=fill,
            batch_size=self.batch_size,
        )
