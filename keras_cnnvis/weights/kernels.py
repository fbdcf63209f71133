"""Reading weight layers: each filter's kernel out of a layer (Conv2D, transposed, depthwise,
separable, Dense on a flattened image) as small images and as a `(fan_in, n_filters)` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_cnnvis.model import LayerInfo, find_layer, find_layers, input_shape, iter_layers

KERNEL_KINDS = ("conv", "depthwise", "dense_image", "dense")
"""What `layer_kernel` found: a full convolution, a depthwise kernel (DepthwiseConv2D or the
depthwise part of SeparableConv2D), a Dense layer seeing a flattened image, or another Dense."""


@dataclass
class LayerKernel:
    """The weights of one layer, per filter and as a matrix.

    Attributes:
        path: the layer's path in the model.
        layer_type: the layer's class name.
        kind: one of `KERNEL_KINDS`.
        raw_shape: the shape of the stored kernel variable (for depthwise and separable
            layers, the depthwise kernel).
        filters: float32 `(n_filters, kh, kw, c)`: filter `i`'s kernel as a small image
            (`c` input channels; 1 for depthwise kernels; the image's channels for a Dense
            unit), or None for a Dense layer that does not see an image.
        matrix: float32 `(fan_in, n_filters)`: column `i` holds filter `i`'s weights (the
            kernel reshaped to `(kh * kw * c, n_filters)`).
        depth_multiplier: for depthwise kernels, filter `c * m + j` reads input channel `c`
            (multiplier `j`); 0 otherwise.
    """

    path: str
    layer_type: str
    kind: str
    raw_shape: tuple
    filters: np.ndarray | None
    matrix: np.ndarray
    depth_multiplier: int = 0

    @property
    def n_filters(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def spatial(self) -> bool:
        """Whether each filter is a 2-D image (everything but a Dense layer on features)."""
        return self.filters is not None

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (0, 0) if self.filters is None else tuple(self.filters.shape[1:3])

    @property
    def in_channels(self) -> int:
        """Input channels of each filter image (1 for depthwise kernels)."""
        return 0 if self.filters is None else int(self.filters.shape[3])

    def input_channel(self, index: int) -> int:
        """The input channel a depthwise filter reads (`index // depth_multiplier`)."""
        return index // self.depth_multiplier if self.depth_multiplier else -1


def _is_depthwise(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D))


def _is_conv(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and not (
        _is_depthwise(layer)
    )


def has_kernel(layer: keras.layers.Layer) -> bool:
    """Whether `layer_kernel` can read `layer` (2-D convolutions of any kind and Dense)."""
    return _is_conv(layer) or _is_depthwise(layer) or isinstance(layer, keras.layers.Dense)


def kernel_variable(info: LayerInfo) -> Any:
    """The layer's kernel variable (`depthwise_kernel` for SeparableConv2D).

    Raises:
        ValueError: if the layer is not a 2-D convolution or Dense layer, or is not built.
    """
    layer = info.layer
    if not has_kernel(layer):
        raise ValueError(
            f"Layer '{info.path}' ({type(layer).__name__}) has no kernel to show; choose a "
            "Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D or Dense layer."
        )
    if not layer.built:
        raise ValueError(
            f"Layer '{info.path}' is not built yet (no weights); call the model on a batch "
            "or build it first."
        )
    if isinstance(layer, keras.layers.SeparableConv2D):
        return layer.depthwise_kernel
    return layer.kernel


def kernel_array(info: LayerInfo) -> np.ndarray:
    """The current value of the layer's kernel variable as a float32 numpy copy."""
    return np.array(kernel_variable(info).numpy(), dtype=np.float32)


def dense_image_shape(model: keras.Model, info: LayerInfo) -> tuple[int, int, int] | None:
    """The `(H, W, C)` image a Dense layer sees flattened, or None if it sees features.

    A Dense layer sees an image when its input is the output of a `Flatten` layer whose
    own input is a rank-3 `(H, W, C)` tensor, or (for models without a layer graph) when
    its input size equals the size of the model's image input.
    """
    layer = info.layer
    if not isinstance(layer, keras.layers.Dense):
        return None
    fan_in = int(layer.kernel.shape[0])
    try:
        dense_input = layer.input
    except (AttributeError, ValueError, IndexError, RuntimeError):
        dense_input = None
    if dense_input is not None:
        for other in iter_layers(model):
            if not isinstance(other.layer, keras.layers.Flatten):
                continue
            try:
                out, inp = other.layer.output, other.layer.input
            except (AttributeError, ValueError, IndexError, RuntimeError):
                continue
            if out is dense_input:
                shape = tuple(inp.shape[1:])
                if len(shape) == 3 and None not in shape and int(np.prod(shape)) == fan_in:
                    return tuple(int(s) for s in shape)
                return None
    try:
        shape = input_shape(model)
    except ValueError:
        shape = None
    if shape and len(shape) == 3 and None not in shape and int(np.prod(shape)) == fan_in:
        return tuple(int(s) for s in shape)
    return None


def layer_kernel(model: keras.Model, layer: Any, raw: np.ndarray | None = None) -> LayerKernel:
    """Reads a layer's weights per filter and as a `(fan_in, n_filters)` matrix.

    Conv2D (and Conv2DTranspose, read as `(kh, kw, in, out)`) filters are `(kh, kw, in)`
    images. DepthwiseConv2D and the depthwise part of SeparableConv2D give one `(kh, kw,
    1)` filter per (input channel `c`, multiplier `j`), at index `c * multiplier + j` (the
    depthwise output channel). A Dense layer that sees the flattened image gives one
    `(H, W, C)` image per unit; any other Dense layer only its matrix.

    Example:

    ```python
    k = layer_kernel(model, "conv1")
    k.filters.shape   # (16, 5, 5, 3)
    k.matrix.shape    # (75, 16)
    ```

    Args:
        model: a Keras model of any kind.
        layer: the layer (name, path or object).
        raw: a kernel array of the layer's kernel shape to read instead of the current
            weights (e.g. a snapshot taken at initialisation). Defaults to None.

    Returns:
        A `LayerKernel`.

    Raises:
        ValueError: for an unknown layer, a layer without a kernel, or `raw` of the wrong
            shape.
    """
    info = find_layer(model, layer)
    var = kernel_variable(info)
    shape = tuple(int(s) for s in var.shape)
    if raw is None:
        k = np.array(var.numpy(), dtype=np.float32)
    else:
        k = np.asarray(raw, dtype=np.float32)
        if tuple(k.shape) != shape:
            raise ValueError(
                f"The kernel given for layer '{info.path}' has shape {tuple(k.shape)}; "
                f"the layer's kernel has shape {shape}."
            )
    lay = info.layer
    name = type(lay).__name__
    if _is_depthwise(lay):
        kh, kw, cin, mult = k.shape
        # (kh, kw, cin, mult) -> filter index c * mult + j.
        filters = np.transpose(k, (2, 3, 0, 1)).reshape(cin * mult, kh, kw, 1)
        matrix = filters.reshape(cin * mult, kh * kw).T
        return LayerKernel(info.path, name, "depthwise", shape, filters, matrix, int(mult))
    if _is_conv(lay):
        if isinstance(lay, keras.layers.Conv2DTranspose):
            k = np.transpose(k, (0, 1, 3, 2))  # stored as (kh, kw, out, in)
        kh, kw, cin, cout = k.shape
        filters = np.transpose(k, (3, 0, 1, 2))
        return LayerKernel(info.path, name, "conv", shape, filters, k.reshape(-1, cout))
    image_shape = dense_image_shape(model, info)
    if image_shape is not None:
        filters = np.transpose(k, (1, 0)).reshape((k.shape[1],) + image_shape)
        return LayerKernel(info.path, name, "dense_image", shape, filters, k)
    return LayerKernel(info.path, name, "dense", shape, None, k)


def conv_kernel(info: LayerInfo) -> np.ndarray:
    """The layer's kernel as a float32 `(kh, kw, in_channels, filters)` array.

    Depthwise kernels (DepthwiseConv2D, the depthwise part of SeparableConv2D) are
    expanded: output channel `c * multiplier + j` reads input channel `c` only, all other
    entries are zero. Use `layer_kernel` for a compact per-filter view.

    Raises:
        ValueError: if the layer has no 2-D convolution kernel.
    """
    layer = info.layer
    if not (_is_conv(layer) or _is_depthwise(layer)):
        raise ValueError(
            f"Layer '{info.path}' ({type(layer).__name__}) has no 2-D convolution kernel; "
            "choose a Conv2D, Conv2DTranspose, DepthwiseConv2D or SeparableConv2D layer."
        )
    k = kernel_array(info)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return np.transpose(k, (0, 1, 3, 2))
    if not _is_depthwise(layer):
        return k
    kh, kw, cin, mult = k.shape
    full = np.zeros((kh, kw, cin, cin * mult), np.float32)
    for c in range(cin):
        full[:, :, c, c * mult : (c + 1) * mult] = k[:, :, c, :]
    return full


def weight_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer whose filters can be shown: 2-D convolutions and Dense layers that see
    the flattened image, in forward order (nested models included)."""
    out = []
    for info in iter_layers(model):
        lay = info.layer
        if _is_conv(lay) or _is_depthwise(lay):
            out.append(info)
        elif isinstance(lay, keras.layers.Dense) and lay.built:
            if dense_image_shape(model, info) is not None:
                out.append(info)
    return out


def check_tileable(model: keras.Model, layer: Any) -> LayerKernel:
    """`layer_kernel`, raising a clear error if the layer's filters are not images.

    Raises:
        ValueError: for a Dense layer that does not see the flattened image, or any
            layer without a kernel.
    """
    k = layer_kernel(model, layer)
    if not k.spatial:
        try:
            shape = input_shape(model)
        except ValueError:
            shape = None
        seen = (
            f"the model input {shape} has {int(np.prod(shape))} values"
            if shape and (None not in shape)
            else "the model input size is unknown"
        )
        raise ValueError(
            f"Dense layer '{k.path}' takes {k.matrix.shape[0]} input features, not a "
            f"flattened image ({seen}); filter grids show Dense weights only for a Dense "
            "layer that sees the flattened image (Flatten -> Dense). Choose a convolution "
            "layer or such a Dense layer."
        )
    return k


def tileable_layers(model: keras.Model, layers: Any = None) -> list[LayerInfo]:
    """The layers whose filters can be shown as images: the given ones, or every one of
    `weight_layers`.

    Raises:
        ValueError: for unknown layers, layers without a kernel, a Dense layer that does
            not see the flattened image, or a model without any such layer.
    """
    if layers is None:
        infos = weight_layers(model)
        if not infos:
            raise ValueError(
                f"Model '{model.name}' has no layer with filters to show (no 2-D "
                "convolution layer and no Dense layer on the flattened image)."
            )
    else:
        infos = find_layers(model, layers)
    for info in infos:
        check_tileable(model, info.layer)
    return infos
