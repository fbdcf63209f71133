"""ClassVisualizationCallback: logs one activation-maximisation image per class every few
epochs, so you can watch class concepts form during training.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from keras_cnnvis import image, inputs
from keras_cnnvis.callbacks.base import MonitorCallback
from keras_cnnvis.model import check_image_model, output_activation, predict_fn


class ClassVisualizationCallback(MonitorCallback):
    """Logs class visualisations (the image that maximises each class logit) over training.

    Every N epochs it optimises one small image per class with the compiled render loop
    (Fourier parameterisation, Lucid's transforms) against the live model, and writes
    them as the image `synthesis/classes` (image `i` = class `classes[i]`) plus the record
    `json/synthesis/classes` with the class names and the probability the model gives
    each picture. The compiled step is traced once and reused at every epoch.

    Example:

    ```python
    cb = ClassVisualizationCallback("runs/exp1", every_n_epochs=2,
                                    class_names=["circle", "square"])
    model.fit(x, y, epochs=10, callbacks=[cb])
    ```

    Args:
        log_dir: the TensorBoard log directory.
        classes: class indices to show. Defaults to None (every class, at most 16).
        class_names: names for the record. Defaults to None (`"class <i>"`).
        steps: optimisation steps per log. Defaults to 32.
        size: image side in pixels. Defaults to None (the model's input size, at most 64).
        param: `"fourier"` or `"pixel"`. Defaults to `"fourier"`.
        learning_rate: Adam's step size. Defaults to 0.05.
        transforms: robustness transforms (see `synthesis.render`). Defaults to
            `"default"`.
        preprocess: maps [0, 1] images to the model's input. Defaults to None.
        seed: random seed (the same start image every time). Defaults to 0.
        every_n_epochs: log after every N-th epoch; 0 turns it off. Defaults to 5.
        log_initial: also log before training. Defaults to True.
        run_name: run subdirectory. Defaults to `"cnnvis"`.
        on_error: `"warn"` or `"raise"`. Defaults to `"warn"`.

    Raises:
        ValueError: at `on_train_begin` for a model that is not an image classifier or a
            class index out of range.
    """

    MAX_CLASSES = 16

    def __init__(
        self,
        log_dir: str,
        classes: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
        steps: int = 32,
        size: int | None = None,
        param: Any = "fourier",
        learning_rate: float = 0.05,
        transforms: Any = "default",
        preprocess: Callable | None = None,
        seed: int = 0,
        every_n_epochs: int = 5,
        log_initial: bool = True,
        run_name: str = "cnnvis",
        on_error: str = "warn",
    ):
        super().__init__(log_dir, every_n_epochs, log_initial, run_name, on_error)
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1; got {steps}.")
        self.classes = None if classes is None else [int(c) for c in classes]
        self.class_names = None if class_names is None else list(class_names)
        self.steps = int(steps)
        self.size = size
        self.param = param
        self.learning_rate = float(learning_rate)
        self.transforms = transforms
        self.preprocess = preprocess
        self.seed = int(seed)
        self._renderer = None
        self._model_id = None

    def setup(self) -> None:
        from keras_cnnvis.synthesis import objectives as obj
        from keras_cnnvis.synthesis._checks import check_classes
        from keras_cnnvis.synthesis.render import Renderer

        shape = check_image_model(self.model)
        if self.size is not None:
            hw = (int(self.size), int(self.size))
        elif shape[0] is not None and shape[1] is not None:
            hw = (min(int(shape[0]), 64), min(int(shape[1]), 64))
        else:
            hw = (64, 64)
        channels = int(shape[2]) if shape[2] is not None else 3
        render_shape = hw + (channels,)
        # One binary unit is two classes (the one rule of keras_cnnvis.inputs): class 1
        # maximises the unit, class 0 its opposite (check_classes and class_logit say so).
        given = self.classes if self.classes is not None else [0]
        n = check_classes(self.model, given, render_shape, self.preprocess)  # one pass
        classes = given if self.classes is not None else list(range(min(n, self.MAX_CLASSES)))
        if self.class_names is not None and len(self.class_names) < n:
            raise ValueError(f"{len(self.class_names)} class names for a model with {n} classes.")
        self._classes = classes
        if self._renderer is None or self._model_id != id(self.model):
            objective = sum(obj.class_logit(c, batch=i) for i, c in enumerate(classes))
            self._renderer = Renderer(
                self.model,
                objective,
                render_shape,
                batch=len(classes),
                param=self.param,
                transforms=self.transforms,
                learning_rate=self.learning_rate,
                preprocess=self.preprocess,
                seed=self.seed,
            )
            self._model_id = id(self.model)

    def log(self, step: int, logs: dict | None = None) -> None:
        renderer = self._renderer
        renderer.reset()
        images = renderer.run(self.steps).images
        x = images if self.preprocess is None else self.preprocess(images)
        run_model = renderer.model
        if renderer.resize_to is not None:
            x = image.resize(np.asarray(x), renderer.resize_to)
        probs = np.asarray(predict_fn(run_model)(np.asarray(x, np.float32)), np.float32)
        activation = output_activation(run_model).name
        own = inputs.class_scores(probs, self._classes, activation)
        predicted = inputs.predicted_classes(probs, activation)
        names = [self.class_names[c] if self.class_names else f"class {c}" for c in self._classes]
        self.writer.images("synthesis/classes", image.display_channels(images), step)
        self.writer.json(
            "json/synthesis/classes",
            {
                "classes": self._classes,
                "class_names": names,
                "probability": [round(float(p), 4) for p in own],
                "predicted": predicted.tolist(),
                "steps": self.steps,
                "size": list(images.shape[1:3]),
            },
            step,
            kind="synthesis",
        )
