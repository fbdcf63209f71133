"""Filter tiles and grids: exact tile values from hand-set kernels."""

import keras
import numpy as np
import pytest

from keras_cnnvis import filter_grid, filter_tiles


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
    np.testing.assert_allclose(t.tiles[2 * 2 + 1, ..., 0], 0.5 + 0.5 * np.arange(9).reshape(3, 3) / 8)
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
    with pytest.raises(ValueError, match="no 2-D convolution kernel"):
        dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(name="f")])
        filter_tiles(dense, "f")
    with pytest.raises(ValueError, match="normalize must be one of"):
        filter_tiles(model, "conv", normalize="global")
