"""FilterHealthCallback: scores every weight layer each epoch (noise-like filters, dead units,
drift, update ratio, spectral exponent), logs them, and warns at the end of training about
layers that look non-converged.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from keras_cnnvis.callbacks.base import MonitorCallback, check_image_input
from keras_cnnvis.inputs import check_images
from keras_cnnvis.model import FeatureExtractor
from keras_cnnvis.rendering.health import health_grid
from keras_cnnvis.weights.health import (
    ALPHA,
    HealthReport,
    filter_health,
    scored_layers,
    snapshot_kernels,
)


class FilterHealthCallback(MonitorCallback):
    """Diagnoses filters during training: noise-like (not converged), dead, saturated, not
    moving, and one verdict per layer.

    At each record it runs `filter_health` with the kernels it copied at the start of
    training (drift) and at the previous record (update ratio), and writes into
    `<log_dir>/cnnvis`:

    - scalars `health/<layer>/<score>` for `noise_like_fraction`, `dead_fraction`,
      `saturated_fraction`, `mean_drift`, `median_update_ratio`, `spectral_alpha` and
      `spike_ratio` (each when measured and finite);
    - the image `health/<layer>`: the filter grid with flagged filters outlined (red
      noise-like, blue dead, orange saturated, cyan not moving, magenta non-finite; not
      for Dense layers that do not see the image);
    - the record `json/health/<layer>`: verdict, evidence, the per-filter table and flags.

    At the end of training it issues one `UserWarning` naming the layers that look
    non-converged, with their verdicts. Layers the fit does not train (`trainable=False` on
    them or on a model around them, e.g. a frozen base) get the verdict `frozen` and are not
    named, unless their weights are NaN or inf.

    Example:

    ```python
    cb = FilterHealthCallback("runs/exp1", probe=x_val[:32])
    model.fit(x, y, epochs=10, callbacks=[cb])
    cb.report["conv1"].verdict
    ```

    Args:
        log_dir: the TensorBoard log directory.
        layers: weight layers to score (names, paths or objects). Defaults to None (every
            2-D convolution and Dense layer).
        probe: images `(N, H, W, C)` for dead/saturated units (a few dozen validation
            images). Defaults to None (not scored).
        alpha: significance level of the per-filter structure test. Defaults to 0.01.
        max_filters: filters shown in each grid. Defaults to 64.
        warn: issue the end-of-training warning. Defaults to True.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 1.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at `on_train_begin` (before any epoch) for unknown layers, layers
            without a kernel, a model without weight layers, or probe images that do not
            fit the model input.
    """

    PAD = 1
    log_at_end = True
    skip_non_finite_weights = False  # non-finite filters are one of its diagnoses

    def __init__(
        self,
        log_dir: str,
        layers: Sequence[Any] | str | None = None,
        probe: np.ndarray | None = None,
        alpha: float = ALPHA,
        max_filters: int = 64,
        warn: bool = True,
        every_n_epochs: int = 1,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
        self.layers = layers
        self.probe = probe
        self.alpha = float(alpha)
        self.max_filters = max_filters
        self.warn = bool(warn)
        self.report: HealthReport | None = None
        self._infos: list = []
        self._images: np.ndarray | None = None
        self._extractor: FeatureExtractor | None = None
        self._initial: dict[str, np.ndarray] | None = None
        self._initial_of: int | None = None
        self._previous: dict[str, np.ndarray] | None = None
        self._previous_step: int | None = None

    def setup(self) -> None:
        check_image_input(self.model, "FilterHealthCallback")
        self._infos = scored_layers(self.model, self.layers)
        self._images = None
        self._extractor = None
        if self.probe is not None:
            self._images = check_images(self.probe, self.model, "probe images", single=True)
            self._extractor = FeatureExtractor(self.model, [i.layer for i in self._infos])
        layers = [i.layer for i in self._infos]
        # Drift is measured from the first time this callback saw this model, so a second
        # fit continues the same history.
        if self._initial_of != id(self.model) or self._initial is None:
            self._initial = snapshot_kernels(self.model, layers)
            self._initial_of = id(self.model)
        else:
            missing = [i.path for i in self._infos if i.path not in self._initial]
            self._initial.update(snapshot_kernels(self.model, missing) if missing else {})
        self._previous = None
        self._previous_step = None
        self.report = None

    def log(self, step: int, logs: dict | None = None) -> None:
        layers = [i.layer for i in self._infos]
        report = filter_health(
            self.model,
            layers,
            probe=self._images,
            initial_weights=self._initial,
            previous_weights=self._previous,
            alpha=self.alpha,
            extractor=self._extractor,
        )
        for path, health in report.items():
            for name, value in health.scalars().items():
                if np.isfinite(value):
                    self.writer.scalar(f"health/{path}/{name}", value, step)
            payload = health.payload()
            payload["update_over_epochs"] = (
                None if self._previous_step is None else step - self._previous_step
            )
            grid, geometry = health_grid(self.model, health, max_filters=self.max_filters)
            if grid is not None:
                self.writer.images(f"health/{path}", grid, step)
                payload["grid"] = geometry
            self.writer.json(f"json/health/{path}", payload, step, kind="health")
        self.report = report
        self._previous = snapshot_kernels(self.model, layers)
        self._previous_step = step

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if not self.warn or self.report is None or self.every_n_epochs == 0:
            return
        if self._previous_step != self._last_completed:
            return  # the last report is older than the trained model (a skipped record)
        bad = self.report.non_converged()
        if bad:
            names = "; ".join(f"'{h.layer}' ({h.verdict})" for h in bad)
            warnings.warn(
                f"FilterHealthCallback: {len(bad)} of {len(self.report)} layers look "
                f"non-converged at the end of training: {names}. See the cnnvis tab "
                f"(Health) or json/health/<layer> in {self.run_dir} for the evidence.",
                UserWarning,
                stacklevel=2,
            )
