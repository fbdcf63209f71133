"""FilterGridCallback in a real fit: event files read back with TensorBoard's reader."""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen, random_data, small_cnn
from eventfiles import event_files, read_run
from keras_cnnvis import filter_grid
from keras_cnnvis.callbacks import FilterGridCallback
from keras_cnnvis.rendering import image

CONVS = ["conv_a", "conv_b"]


@pytest.fixture
def data():
    return random_data()


def test_fit_logs_every_conv_layer_at_each_step(tmp_path, data):
    model = small_cnn()
    cb = FilterGridCallback(str(tmp_path), on_error="raise")
    model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert os.listdir(tmp_path) == ["cnnvis"]
    assert len(event_files(tmp_path / "cnnvis")) == 1
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {f"filters/{c}" for c in CONVS} | {f"json/filters/{c}" for c in CONVS}
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    # conv_a: 6 RGB 5x5 filters, 3x2 grid, tiles scaled x6 (30 px) with 1 px padding.
    grid_a = run["filters/conv_a"][-1].value[0]
    assert grid_a.shape == (2 * 31 + 1, 3 * 31 + 1, 3)
    # conv_b: 4 filters x first 4 of 6 input channels, 3x3 tiles scaled x11.
    grid_b = run["filters/conv_b"][0].value[0]
    assert grid_b.shape == (4 * 34 + 1, 4 * 34 + 1)
    meta = run["json/filters/conv_b"][0].value
    assert meta["mode"] == "channels" and meta["shown_channels"] == [0, 1, 2, 3]
    assert meta["grid"] == {"rows": 4, "cols": 4, "tile": [33, 33], "pad": 1, "scale": 1}
    # The last logged grid is exactly the trained weights rendered (PNG is lossless).
    np.testing.assert_array_equal(grid_a[..., ::-1], image.to_uint8(filter_grid(model, "conv_a")))
    # ... and the initial grid differs from it (training moved the filters).
    assert not np.array_equal(run["filters/conv_a"][0].value[0], grid_a)


def test_two_fits_in_a_row_and_initial_epoch(tmp_path, data):
    model = small_cnn()
    cb = FilterGridCallback(str(tmp_path), layers=["conv_a"], on_error="raise")
    model.fit(*data, epochs=2, verbose=0, callbacks=[cb])
    model.fit(*data, initial_epoch=2, epochs=4, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["filters/conv_a"]] == [0, 1, 2, 2, 3, 4]
    # The end of fit 1 and the start of fit 2 show the same weights.
    np.testing.assert_array_equal(
        run["filters/conv_a"][2].value[0], run["filters/conv_a"][3].value[0]
    )


def test_every_n_epochs(tmp_path, data):
    model = small_cnn()
    cb = FilterGridCallback(
        str(tmp_path / "a"), layers="conv_b", every_n_epochs=2, log_initial=False
    )
    model.fit(*data, epochs=5, verbose=0, callbacks=[cb])
    assert [r.step for r in read_run(str(tmp_path / "a" / "cnnvis"))["filters/conv_b"]] == [2, 4]


def test_every_n_epochs_zero_writes_nothing(tmp_path, data):
    model = small_cnn()
    model.fit(
        *data, epochs=2, verbose=0, callbacks=[FilterGridCallback(str(tmp_path), every_n_epochs=0)]
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "make_model, layers, message",
    [
        (
            small_cnn,
            ["conv_z"],
            r"No layer named 'conv_z'.*'conv_a' \(Conv2D\), 'conv_b' \(Conv2D\)",
        ),
        (
            small_cnn,
            ["dense"],
            r"Dense layer 'dense' takes 4 input features, not a flattened image",
        ),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((16, 16, 3)),
                    keras.layers.GlobalAveragePooling2D(),
                    keras.layers.Dense(2),
                ]
            ),
            None,
            r"has no layer with filters to show",
        ),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((16, 3)),
                    keras.layers.Conv1D(2, 3),
                    keras.layers.Flatten(),
                    keras.layers.Dense(2),
                ]
            ),
            None,
            r"needs an image model",
        ),
    ],
)
def test_misconfiguration_raises_before_the_first_epoch(
    tmp_path, data, make_model, layers, message
):
    model = make_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    x = data[0] if len(model.inputs[0].shape) == 4 else data[0][:, 0, :, :]
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        model.fit(
            x,
            data[1],
            epochs=3,
            verbose=0,
            callbacks=[epochs, FilterGridCallback(str(tmp_path), layers=layers)],
        )
    assert epochs.begun == []
    assert not (tmp_path / "cnnvis").exists()


class _FailsAtStep2(FilterGridCallback):
    def log(self, step, logs=None):
        if step == 2:
            raise RuntimeError("simulated failure")
        super().log(step, logs)


def test_a_failing_monitor_warns_once_and_training_continues(tmp_path, data):
    model = small_cnn()
    cb = _FailsAtStep2(str(tmp_path), layers=["conv_a"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(*data, epochs=4, verbose=0, callbacks=[cb])
    ours = [w for w in caught if "_FailsAtStep2 failed" in str(w.message)]
    assert len(ours) == 1 and "simulated failure" in str(ours[0].message)
    assert len(history.history["loss"]) == 4
    assert [r.step for r in read_run(str(tmp_path / "cnnvis"))["filters/conv_a"]] == [0, 1]


def test_on_error_raise_reraises(tmp_path, data):
    model = small_cnn()
    with pytest.raises(RuntimeError, match="simulated failure"):
        model.fit(
            *data, epochs=3, verbose=0, callbacks=[_FailsAtStep2(str(tmp_path), on_error="raise")]
        )


def test_constructor_validation():
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 0"):
        FilterGridCallback("x", every_n_epochs=-1)
    with pytest.raises(ValueError, match="on_error must be one of"):
        FilterGridCallback("x", on_error="ignore")
    with pytest.raises(ValueError, match="normalize must be one of"):
        FilterGridCallback("x", normalize="global")


def mixed_model():
    """Depthwise, separable and a Dense layer on the flattened image, side by side."""
    i = keras.Input((8, 8, 3))
    a = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(i)
    b = keras.layers.SeparableConv2D(4, 3, depth_multiplier=1, name="sep")(a)
    c = keras.layers.Dense(5, name="fc")(keras.layers.Flatten()(i))
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(b), c])
    model = keras.Model(i, keras.layers.Dense(2, activation="softmax", name="out")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_every_weight_layer_kind_is_logged_with_its_geometry(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 8, 8, 3), dtype=np.float32), rng.integers(0, 2, 16)
    model = mixed_model()
    model.fit(
        x, y, epochs=1, verbose=0, callbacks=[FilterGridCallback(str(tmp_path), on_error="raise")]
    )
    run = read_run(str(tmp_path / "cnnvis"))
    # Default layers: every conv kind plus the Dense layer that sees the image (not "out").
    assert set(run) == {
        f"{p}/{n}" for p in ("filters", "json/filters") for n in ("dw", "sep", "fc")
    }
    dw = run["json/filters/dw"][-1].value
    # 3 input channels x multiplier 2 = 6 gray 3x3 tiles (x11 = 33 px) in a 2x3 grid.
    assert dw["mode"] == "gray" and dw["n_filters"] == 6 and dw["depth_multiplier"] == 2
    assert dw["shown_channels"] == [0, 0, 1, 1, 2, 2]
    assert dw["grid"] == {"rows": 2, "cols": 3, "tile": [33, 33], "pad": 1, "scale": 1}
    assert run["filters/dw"][-1].value[0].shape == (2 * 34 + 1, 3 * 34 + 1)
    sep = run["json/filters/sep"][-1].value
    assert (
        sep["layer_type"] == "SeparableConv2D" and sep["n_filters"] == 6 and sep["mode"] == "gray"
    )
    fc = run["json/filters/fc"][-1].value
    # 5 units, each an 8x8 RGB image (x4 = 32 px), 2x3 grid.
    assert fc["mode"] == "rgb" and fc["kernel_size"] == [8, 8]
    assert fc["grid"] == {"rows": 2, "cols": 3, "tile": [32, 32], "pad": 1, "scale": 1}
    np.testing.assert_array_equal(
        run["filters/fc"][-1].value[0][..., ::-1], image.to_uint8(filter_grid(model, "fc"))
    )
