"""Filter tiles and grids: exact tile values from hand-set kernels."""

import keras
import numpy as np
import pytest

from keras_cnnvis import filter_grid, filter_tiles
from keras_cnnvis.model import find_layer
from keras_cnnvis.weights.kernels import conv_kernel, layer_kernel, weight_layers


def _conv_model(cin, filters=2, k=3, transpose=False):
    layer_cls = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    i = keras.Input((8, 8, cin))
    out = layer_cls(filters, k, name="conv")(i)
    return keras.Model(i, out)


def test_rgb_filters_are_one_tile_each_with_zero_at_mid_grey():
    model = _conv_model(3)
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[0, 0, 0, 0] = 2.0  # filter 0: red top-left strongly positive
    kernel[2, 2, 2, 0] = -1.0  # blue bottom-right negative
    kernel[1, 1, 1, 1] = 0.5  # filter 1: green centre
    model.get_layer("conv").kernel.assign(kernel)
    t = filter_tiles(model, "conv")
    assert t.mode == "rgb" and t.tiles.shape == (2, 3, 3, 3) and (t.rows, t.cols) == (1, 2)
    f0 = t.tiles[0]
    assert f0[0, 0, 0] == pytest.approx(1.0)
    assert f0[2, 2, 2] == pytest.approx(0.25)
    assert f0[1, 1, 1] == pytest.approx(0.5)
    assert t.tiles[1][1, 1, 1] == pytest.approx(1.0)  # own scale per filter
    shared = filter_tiles(model, "conv", normalize="layer")
    assert shared.tiles[1][1, 1, 1] == pytest.approx(0.5 + 0.5 * 0.5 / 2.0)


def test_channel_mode_rows_are_filters_columns_are_channels():
    model = _conv_model(5, filters=3)
    kernel = np.zeros((3, 3, 5, 3), np.float32)
    kernel[..., 1, 2] = np.arange(9).reshape(3, 3)  # filter 2, input channel 1
    model.get_layer("conv").kernel.assign(kernel)
    t = filter_tiles(model, "conv", channels=[0, 1])
    assert t.mode == "channels" and (t.rows, t.cols) == (3, 2) and t.tiles.shape == (6, 3, 3, 1)
    np.testing.assert_allclose(
        t.tiles[2 * 2 + 1, ..., 0], 0.5 + 0.5 * np.arange(9).reshape(3, 3) / 8
    )
    np.testing.assert_allclose(t.tiles[:5], 0.5)
    assert filter_tiles(model, "conv").channels == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"out of range.*5 input channels \(valid: 0..4\)"):
        filter_tiles(model, "conv", channels=[7])


def test_transposed_conv_kernel_is_read_as_in_by_out():
    model = _conv_model(3, filters=4, transpose=True)
    kernel = np.zeros((3, 3, 4, 3), np.float32)  # Conv2DTranspose: (kh, kw, filters, in)
    kernel[0, 0, 3, 2] = 1.0
    model.get_layer("conv").kernel.assign(kernel)
    t = filter_tiles(model, "conv")
    assert t.n_filters == 4 and t.in_channels == 3
    assert t.tiles[3][0, 0, 2] == pytest.approx(1.0)


def test_filter_grid_size_and_errors():
    model = _conv_model(3, filters=16, k=5)
    grid = filter_grid(model, "conv", scale=4)
    assert grid.shape == (4 * 21 + 1, 4 * 21 + 1, 3)
    assert grid.min() >= 0 and grid.max() <= 1
    with pytest.raises(ValueError, match=r"'f' \(Flatten\) has no kernel to show"):
        dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(name="f")])
        filter_tiles(dense, "f")
    with pytest.raises(ValueError, match="normalize must be one of"):
        filter_tiles(model, "conv", normalize="global")


def _depthwise_model(separable=False, cin=2, mult=3):
    i = keras.Input((8, 8, cin))
    if separable:
        layer = keras.layers.SeparableConv2D(4, 3, depth_multiplier=mult, name="dw")
    else:
        layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=mult, name="dw")
    return keras.Model(i, layer(i)), layer


@pytest.mark.parametrize("separable", [False, True])
def test_depthwise_kernels_give_one_gray_tile_per_channel_and_multiplier(separable):
    model, layer = _depthwise_model(separable)
    k = np.zeros((3, 3, 2, 3), np.float32)  # (kh, kw, in, multiplier)
    k[0, 0, 1, 2] = 4.0  # input channel 1, multiplier 2 -> depthwise output 1 * 3 + 2 = 5
    k[2, 1, 1, 2] = -2.0
    k[1, 1, 0, 0] = 1.0  # input channel 0, multiplier 0 -> output 0
    (layer.depthwise_kernel if separable else layer.kernel).assign(k)
    t = filter_tiles(model, "dw")
    assert t.mode == "gray" and t.kind == "depthwise" and t.depth_multiplier == 3
    assert t.tiles.shape == (6, 3, 3, 1) and (t.rows, t.cols) == (2, 3)
    assert t.n_filters == 6 and t.in_channels == 2 and t.channels == [0, 0, 0, 1, 1, 1]
    expected5 = np.full((3, 3), 0.5)
    expected5[0, 0], expected5[2, 1] = 1.0, 0.25
    np.testing.assert_allclose(t.tiles[5, ..., 0], expected5)
    assert t.tiles[0, 1, 1, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(t.tiles[[1, 2, 3, 4]], 0.5)  # all-zero kernels: mid-grey
    lk = layer_kernel(model, "dw")
    assert lk.matrix.shape == (9, 6)
    np.testing.assert_array_equal(lk.matrix[:, 5], k[:, :, 1, 2].ravel())
    # The expanded (kh, kw, in, out) view agrees: output 5 reads only input channel 1.
    full = conv_kernel(find_layer(model, "dw"))
    assert full.shape == (3, 3, 2, 6)
    np.testing.assert_array_equal(full[:, :, 1, 5], k[:, :, 1, 2])
    np.testing.assert_array_equal(full[:, :, 0, 5], 0)


def test_dense_on_flattened_image_gives_one_image_tile_per_unit():
    i = keras.Input((4, 5, 3))
    out = keras.layers.Dense(2, name="fc")(keras.layers.Flatten()(i))
    model = keras.Model(i, out)
    kernel = np.zeros((60, 2), np.float32)
    # Flatten is row-major over (H, W, C): pixel (y, x, c) is input y * 15 + x * 3 + c.
    kernel[1 * 15 + 2 * 3 + 0, 1] = 3.0  # unit 1: red at (1, 2)
    kernel[3 * 15 + 4 * 3 + 2, 1] = -3.0  # blue at (3, 4)
    model.get_layer("fc").kernel.assign(kernel)
    t = filter_tiles(model, "fc")
    assert t.kind == "dense_image" and t.mode == "rgb" and t.tiles.shape == (2, 4, 5, 3)
    assert t.tiles[1, 1, 2, 0] == pytest.approx(1.0) and t.tiles[1, 3, 4, 2] == pytest.approx(0.0)
    assert t.tiles[1, 0, 0, 0] == pytest.approx(0.5)
    assert [x.path for x in weight_layers(model)] == ["fc"]


def test_dense_on_grayscale_image_in_sequential_and_dense_on_features_error():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, name="fc"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    w = np.arange(36 * 5, dtype=np.float32).reshape(36, 5) - 90
    model.get_layer("fc").kernel.assign(w)
    t = filter_tiles(model, "fc")
    assert t.mode == "gray" and t.tiles.shape == (5, 6, 6, 1) and (t.rows, t.cols) == (2, 3)
    unit3 = w[:, 3].reshape(6, 6)
    np.testing.assert_allclose(
        t.tiles[3, ..., 0], 0.5 + 0.5 * unit3 / np.abs(unit3).max(), rtol=1e-6
    )
    assert [x.path for x in weight_layers(model)] == ["fc"]
    with pytest.raises(
        ValueError, match=r"Dense layer 'out' takes 5 input features, not a flattened image"
    ):
        filter_tiles(model, "out")
    k = layer_kernel(model, "out")
    assert k.kind == "dense" and k.filters is None and k.matrix.shape == (5, 3)


def test_single_channel_conv_is_a_square_gray_grid_and_layer_normalize_uses_all_filters():
    model = _conv_model(1, filters=5, k=3)
    kernel = np.zeros((3, 3, 1, 5), np.float32)
    kernel[0, 0, 0, 0] = 1.0
    kernel[1, 1, 0, 4] = -4.0  # the largest weight sits in a filter that is not shown
    model.get_layer("conv").kernel.assign(kernel)
    t = filter_tiles(model, "conv", max_filters=2, normalize="layer")
    assert t.mode == "gray" and (t.rows, t.cols) == (1, 2) and t.filters == [0, 1]
    assert t.tiles[0, 0, 0, 0] == pytest.approx(0.5 + 0.5 * 1.0 / 4.0)
    with pytest.raises(ValueError, match="shape"):
        layer_kernel(model, "conv", raw=np.zeros((3, 3, 1, 4)))
