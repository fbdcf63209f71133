"""Models for synthesis: a saved Keras model or a keras.applications architecture by name
(with its input preprocessing), and fitting input images to a model's size and channels.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import keras
import numpy as np

from keras_cnnvis.model import check_image_model
from keras_cnnvis.synthesis.samples import _to_rgb, resize_image

# name -> (keras.applications constructor, preprocessing module)
APPLICATIONS = {
    "vgg16": ("VGG16", "vgg16"),
    "vgg19": ("VGG19", "vgg19"),
    "resnet50": ("ResNet50", "resnet"),
    "resnet50v2": ("ResNet50V2", "resnet_v2"),
    "inceptionv3": ("InceptionV3", "inception_v3"),
    "xception": ("Xception", "xception"),
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2"),
    "densenet121": ("DenseNet121", "densenet"),
    "efficientnetb0": ("EfficientNetB0", "efficientnet"),
    "convnexttiny": ("ConvNeXtTiny", "convnext"),
}

# Layers Gatys et al. used, for VGG networks (by keras.applications names).
VGG_STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
VGG_CONTENT_LAYER = "block4_conv2"


def application_key(name: str) -> str:
    """The key of a keras.applications name in `APPLICATIONS`: `"MobileNet_V2"` ->
    `"mobilenetv2"`."""
    return name.lower().replace("_", "").replace("-", "")


def is_application(name: Any) -> bool:
    """Whether `name` is a keras.applications architecture we know (e.g. `"vgg16"`)."""
    return isinstance(name, str) and application_key(name) in APPLICATIONS


def application_preprocess(name: str) -> Callable | None:
    """The function mapping [0, 1] images to a keras.applications model's input (its
    `preprocess_input` on 0..255 pixels, also on tensors), by application name
    (`"resnet50"`) or preprocessing module name (`"resnet"`, `"efficientnet"`); None for
    other names."""
    key = application_key(name)
    modules = {m.replace("_", ""): m for _, m in APPLICATIONS.values()}
    module_name = APPLICATIONS[key][1] if key in APPLICATIONS else modules.get(key)
    if module_name is None:
        return None
    module = getattr(keras.applications, module_name)
    return lambda images: module.preprocess_input(images * 255.0)


def application(
    name: str,
    weights: str | None = "imagenet",
    include_top: bool = False,
    input_shape: tuple | None = None,
) -> tuple[keras.Model, Callable]:
    """A keras.applications model and the function mapping [0, 1] images to its input.

    ImageNet weights download on first use (and are cached by Keras); offline, pass
    `weights=None` for random weights (enough for textures) or use a saved model.

    Example:

    ```python
    model, preprocess = application("vgg16")
    ```

    Args:
        name: e.g. `"vgg16"`, `"vgg19"`, `"resnet50"`, `"inception_v3"`, `"mobilenet_v2"`.
        weights: `"imagenet"` or None (random). Defaults to `"imagenet"`.
        include_top: keep the classifier (fixed input size, 1000 classes). Defaults to
            False (convolutional part only, any input size).
        input_shape: `(height, width, 3)` to build it at. Defaults to None (the
            application's own).

    Returns:
        `(model, preprocess)`.

    Raises:
        ValueError: for an unknown name, an input shape the application does not take, or
            when the weights cannot be downloaded.
    """
    key = application_key(name)
    if key not in APPLICATIONS:
        raise ValueError(
            f"Unknown keras.applications model {name!r}; known: {', '.join(APPLICATIONS)}."
        )
    ctor_name = APPLICATIONS[key][0]
    ctor = getattr(keras.applications, ctor_name)
    weights = None if weights is None or str(weights).lower() in ("none", "random") else weights
    try:
        model = ctor(weights=weights, include_top=include_top, input_shape=input_shape)
    except ValueError as error:  # the configuration (input size, weights file), not the network
        raise ValueError(f"{ctor_name}: {error}") from error
    except Exception as error:
        if weights is None:
            raise
        raise ValueError(
            f"Could not load {weights!r} weights for {name} ({type(error).__name__}: {error}). "
            "Offline? Use random weights (weights=None, or --weights none; fine for "
            "textures) or pass a saved model (.keras)."
        ) from error
    return model, application_preprocess(key)


def load_model(
    source: Any, weights: str | None = "imagenet", include_top: bool = False
) -> tuple[keras.Model, Callable | None]:
    """A model from a `.keras`/`.h5` file, a keras.applications name, or a model object.

    Args:
        source: a path, an application name (see `APPLICATIONS`) or a `keras.Model`.
        weights: for applications, `"imagenet"` or None. Defaults to `"imagenet"`.
        include_top: for applications, keep the classifier. Defaults to False.

    Returns:
        `(model, preprocess)`; `preprocess` is None for saved models and objects (they are
        assumed to take [0, 1] images, like the demo model).

    Raises:
        FileNotFoundError: for a path that does not exist and is no application name.
        ValueError: for a model that is not an image model.
    """
    if isinstance(source, keras.Model):
        model, preprocess = source, None
    elif is_application(source):
        model, preprocess = application(source, weights, include_top)
    else:
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"No model file {path!r}; pass a saved model (.keras) or a keras.applications "
                f"name ({', '.join(APPLICATIONS)})."
            )
        model, preprocess = keras.models.load_model(path, compile=False), None
    check_image_model(model)
    return model, preprocess


def fit_image(image: Any, model: keras.Model, resize: bool = True) -> np.ndarray:
    """Makes an image batch match the model: channels converted (grayscale <-> RGB) and,
    for fixed-size models, resized to the input size when `resize`.

    Args:
        image: `(H, W, C)` or `(N, H, W, C)` in [0, 1] (uint8 0..255 is converted).
        model: the model.
        resize: resize to a fixed-size model's input; False keeps the size (for models
            that can run at any size, see `render.flexible_model`). Defaults to True.

    Returns:
        A float32 `(N, H, W, C)` batch.

    Raises:
        ValueError: for a bad rank or unconvertible channels.
    """
    shape = check_image_model(model)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(
            f"An image is (height, width, channels) or a batch (N, height, width, channels); "
            f"got shape {np.shape(image)}."
        )
    channels = int(shape[2]) if shape[2] is not None else arr.shape[-1]
    if arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Images have {arr.shape[-1]} channels; expected 1 (grayscale) or 3 (RGB)."
        )
    out = []
    for img in arr:
        img = _to_rgb(img, channels)
        fixed = shape[0] is not None and shape[1] is not None
        if resize and fixed and img.shape[:2] != tuple(shape[:2]):
            img = resize_image(img, shape[:2])
        out.append(img)
    return np.stack(out).astype(np.float32)
