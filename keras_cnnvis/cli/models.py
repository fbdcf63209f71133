"""The MODEL argument of every subcommand: a saved model (`.keras`, Keras 2 `.h5`/`.hdf5`) or a
keras.applications name, loaded once, checked to take images, and checked for known traps.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Callable

SAVED = (".keras", ".h5", ".hdf5")


@dataclass
class LoadedModel:
    """A model from the command line.

    Attributes:
        model: the Keras model.
        preprocess: maps [0, 1] images to its input (an application's own
            `preprocess_input`), or None for saved models.
        application: the keras.applications name, or None for saved models.
    """

    model: object
    preprocess: Callable | None
    application: str | None

    def preprocess_name(self, requested: str) -> str:
        """The `--preprocess` to use: `"auto"` is an application's own `preprocess_input`."""
        return self.application if requested == "auto" and self.application else requested


def application_names() -> list:
    from keras_cnnvis.synthesis.models import APPLICATIONS

    return [ctor for ctor, _ in APPLICATIONS.values()]


def check_source(source: str) -> None:
    """Raises before anything loads for a MODEL that is neither a saved file nor a name.

    Raises:
        FileNotFoundError: for a missing file (or an unknown name).
        ValueError: for a folder or a file Keras 3 cannot load.
    """
    from keras_cnnvis.synthesis.models import is_application

    if is_application(source):
        return
    known = ", ".join(application_names())
    if os.path.isdir(source):
        raise ValueError(
            f"Model {source!r} is a folder (a TensorFlow SavedModel?); Keras 3 loads .keras and "
            ".h5 files. Re-save it with model.save('model.keras') where it was made."
        )
    if not os.path.isfile(source):
        raise FileNotFoundError(
            f"Model file {source!r} does not exist; pass a saved model ({', '.join(SAVED)}) "
            f"or a keras.applications name ({known})."
        )
    if not source.lower().endswith(SAVED):
        raise ValueError(
            f"Model file {source!r} is not a Keras model file; Keras 3 loads "
            f"{', '.join(SAVED)} files."
        )


def load_model(
    source: str,
    weights: str | None = "imagenet",
    include_top: bool = True,
    input_size: tuple | None = None,
    where: str = "cnnvis",
) -> LoadedModel:
    """Loads a MODEL argument: a saved file (compile=False) or a keras.applications name.

    Applications get `weights` (`"imagenet"` downloads once; `"none"` is random) and, with
    `input_size = (height, width)`, that input size. Warns once when the model has layers
    whose gradient crashes TensorFlow's oneDNN kernels (see `keras_cnnvis.model.traps`).

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for a file Keras cannot load, weights that cannot be had, an input
            size an application does not take, or a model that does not take images.
    """
    import keras

    from keras_cnnvis.model import check_image_model
    from keras_cnnvis.model.traps import warn_onednn_trap
    from keras_cnnvis.synthesis.models import application, application_key, is_application

    check_source(source)
    if is_application(source):
        shape = None if input_size is None else (int(input_size[0]), int(input_size[1]), 3)
        model, preprocess = application(source, weights, include_top, input_shape=shape)
        loaded = LoadedModel(model, preprocess, application_key(source))
    else:
        try:
            model = keras.models.load_model(source, compile=False)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"Keras cannot load {source!r}: {type(error).__name__}: {error}"
            ) from error
        if source.lower().endswith((".h5", ".hdf5")):
            model = _tensor_input(model)
        loaded = LoadedModel(model, None, None)
    check_image_model(loaded.model)
    warn_onednn_trap(loaded.model, where)
    return loaded


def _tensor_input(model):
    """A Functional model from a Keras 2 file with its one input as a tensor, not a list.

    Keras 2 configs list the inputs, so Keras 3 warns on every call with one tensor; the
    returned model shares every layer and weight (and the name) and does not.
    """
    import keras

    if isinstance(model, keras.Sequential) or len(getattr(model, "inputs", None) or ()) != 1:
        return model
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    try:
        return keras.Model(model.inputs[0], outputs, name=model.name)
    except Exception:  # keep the model as loaded
        return model


def add_model_arguments(
    p: argparse.ArgumentParser, weights: str, positional: bool = True, input_size: bool = False
):
    """Adds MODEL (positional, or `--model`), `--weights` and, with `input_size`,
    `--input-size` to a subcommand's parser."""
    help_text = (
        "a saved model (.keras, or a Keras 2 .h5/.hdf5) or a keras.applications name "
        "(ResNet50, MobileNetV2, EfficientNetB0, VGG16, ...)"
    )
    if positional:
        p.add_argument("model", help=help_text)
    p.add_argument(
        "--weights",
        default=weights,
        help=f"weights of a keras.applications model: none (random) or imagenet (downloads "
        f"once) (default {weights})",
    )
    if input_size:
        p.add_argument(
            "--input-size",
            nargs=2,
            type=int,
            metavar=("HEIGHT", "WIDTH"),
            help="input size for keras.applications names and models that take any size",
        )
