"""CNNVisCallback across numeric and image formats: mixed float16/bfloat16 policies,
grayscale and 4-channel images, 0-255 inputs (float or uint8) with a Rescaling layer inside
the model, and channels_first models (refused before the first epoch).
"""

import warnings

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import attribution as A
from keras_cnnvis import filter_grid, image
from keras_cnnvis.callbacks import CNNVisCallback, FilterGridCallback, GradCAMCallback
from keras_cnnvis.rendering.attribution import display_maps
from robustness_models import LIGHT, shapes_data, tiny_cnn

MAP_TAGS = [
    "json/attribution/grad_cam",
    "json/attribution/layer_cam",
    "json/attribution/saliency",
    "json/attribution/integrated_gradients",
    "json/attribution/occlusion",
]


@pytest.fixture(scope="module")
def data():
    """Shapes data quantised to 8 bits, so x * 255 is exact integer pixels."""
    (x, y), (x_val, y_val, m_val) = shapes_data()
    q = lambda a: (np.round(a * 255) / 255).astype(np.float32)  # noqa: E731
    return (q(x), y), (q(x_val), y_val, m_val)


def run_all(log_dir, model, x, y, x_val, y_val, m_val, **kwargs):
    """One epoch with every monitor on (expensive ones every epoch, the attributions also
    before training, to compare the same weights across formats); returns the records."""
    options = {**LIGHT, "saliency": {**LIGHT["saliency"], "log_initial": True}}
    cb = CNNVisCallback(
        str(log_dir),
        validation_data=(x_val, y_val),
        masks=m_val,
        n_probes=5,
        expensive_every=1,
        options={**options, "occlusion": {"log_initial": True}},
        on_error="raise",
        **kwargs,
        budget=None,
    )
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[cb])
    return read_run(str(log_dir / "cnnvis"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """The float32, RGB, [0, 1] run every other format is compared with."""
    (x, y), (x_val, y_val, m_val) = data
    return run_all(tmp_path_factory.mktemp("reference"), tiny_cnn(), x, y, x_val, y_val, m_val)


@pytest.fixture
def policy(request):
    """Sets a global dtype policy for one test and always restores the previous one."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy(previous)


def maps(run, tag, step=0):
    return np.array(run[tag][[r.step for r in run[tag]].index(step)].value["maps"], float)


def image_channels(run) -> set:
    """Channel counts of every decoded image record (1 for 2-D grayscale PNGs)."""
    return {
        1 if img.ndim == 2 else img.shape[-1]
        for records in run.values()
        if records[0].plugin == "images"
        for r in records
        for img in r.value
    }


@pytest.mark.parametrize(
    "policy, compute, min_corr",
    [("mixed_float16", "float16", 0.99), ("mixed_bfloat16", "bfloat16", 0.95)],
    indirect=["policy"],
)
def test_mixed_precision_policies(tmp_path, data, reference, policy, compute, min_corr):
    (x, y), (x_val, y_val, m_val) = data
    model = tiny_cnn()
    assert model.get_layer("conv_a").compute_dtype == compute
    run = run_all(tmp_path, model, x, y, x_val, y_val, m_val)
    assert set(run) == set(reference)
    for tag in MAP_TAGS:
        for step in (0, 1):
            assert np.isfinite(maps(run, tag, step)).all(), tag
        # Before training the weights are the float32 run's: the maps agree up to rounding.
        corr = np.corrcoef(maps(run, tag).ravel(), maps(reference, tag).ravel())[0, 1]
        assert corr > min_corr, (tag, corr)
    for layer in ("conv_a", "conv_b"):
        ours = run[f"json/activations/{layer}"][0].value["mean"]
        np.testing.assert_allclose(
            ours, reference[f"json/activations/{layer}"][0].value["mean"], atol=5e-3
        )
    # Variables stay float32: filters are drawn from them exactly.
    np.testing.assert_array_equal(
        run["filters/conv_a"][0].value[0], reference["filters/conv_a"][0].value[0]
    )
    np.testing.assert_array_equal(
        run["filters/conv_a"][-1].value[0][..., ::-1], image.to_uint8(filter_grid(model, "conv_a"))
    )
    predicted = np.argmax(model.predict(x_val, verbose=0), axis=1)
    assert run["json/confusion/matrix"][-1].value["accuracy"] == pytest.approx(
        np.mean(predicted == y_val)
    )
    assert all(
        np.isfinite(r.value)
        for tag, records in run.items()
        if records[0].plugin == "scalars"
        for r in records
    )


def test_grayscale_images(tmp_path, data, reference):
    (x, y), (x_val, y_val, m_val) = data
    gray = lambda a: a.mean(axis=-1, keepdims=True)  # noqa: E731
    run = run_all(tmp_path, tiny_cnn((16, 16, 1)), gray(x), y, gray(x_val), y_val, m_val)
    assert set(run) == set(reference)
    assert image_channels(run) == {1, 3}  # gray grids and images; RGB overlays and plots
    assert run["json/filters/conv_a"][0].value["mode"] == "gray"
    probes = run["probes/images"][0].value
    first = [int(np.flatnonzero(y_val == c)[0]) for c in range(5)]
    for img, x_probe in zip(probes, gray(x_val)[sorted(first)]):
        assert img.ndim == 2
        np.testing.assert_array_equal(img[::4, ::4], image.to_uint8(x_probe)[..., 0])


def test_four_channel_images_show_their_first_three(tmp_path, data, reference):
    (x, y), (x_val, y_val, m_val) = data
    # A 4th channel of zeros: drawn as PNG alpha it would make every image invisible.
    four = lambda a: np.concatenate([a, np.zeros_like(a[..., :1])], axis=-1)  # noqa: E731
    model = tiny_cnn((16, 16, 4))
    run = run_all(tmp_path, model, four(x), y, four(x_val), y_val, m_val)
    # Corruptions take grayscale or RGB: the robustness monitor says so and steps aside.
    assert set(run) == {t for t in reference if "robustness" not in t}
    assert image_channels(run) == {1, 3}
    # The sprite's first thumbnail (16 px, not shrunk) is embedded image 0's RGB part.
    sprite = run["embedding/sprite"][0].value[0]
    first = run["json/embedding/pca"][0].value["indices"][0]
    np.testing.assert_array_equal(sprite[:16, :16, ::-1], image.to_uint8(x_val[first]))
    assert run["json/filters/conv_a"][0].value["mode"] == "channels"


def test_four_channel_probe_images_are_written_without_alpha(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    four = lambda a: np.concatenate([a, np.zeros_like(a[..., :1])], axis=-1)  # noqa: E731
    cb = GradCAMCallback(str(tmp_path), four(x_val[:2]), labels=y_val[:2], on_error="raise")
    tiny_cnn((16, 16, 4)).fit(four(x), y, epochs=1, verbose=0, callbacks=[cb])
    probes = read_run(str(tmp_path / "cnnvis"))["probes/images"][0].value
    # RGB (no alpha channel): the first three channels, enlarged 4x (OpenCV reads BGR).
    assert [p.shape[-1] for p in probes] == [3, 3]
    for img, x_probe in zip(probes, x_val[:2]):
        np.testing.assert_array_equal(img[::4, ::4, ::-1], image.to_uint8(x_probe))


def test_display_channels():
    rng = np.random.default_rng(0)
    for c, shown in [(1, [0]), (2, [0]), (3, [0, 1, 2]), (4, [0, 1, 2]), (7, [0, 1, 2])]:
        x = rng.random((2, 5, 5, c), dtype=np.float32)
        np.testing.assert_array_equal(image.display_channels(x), x[..., shown])
    gray = rng.random((5, 5))
    np.testing.assert_array_equal(image.display_channels(gray), gray)


def test_two_channel_images_without_attribution(tmp_path, data):
    (x, y), (x_val, y_val, m_val) = data
    two = lambda a: a[..., :2]  # noqa: E731
    run = run_all(
        tmp_path,
        tiny_cnn((16, 16, 2)),
        two(x),
        y,
        two(x_val),
        y_val,
        m_val,
        exclude=("grad_cam", "saliency", "occlusion"),
    )
    assert {t.split("/")[0] for t in run} == {
        "filters",
        "health",
        "activations",
        "confusion",
        "patches",
        "embedding",
        "neighbors",
        "synthesis",
        "network",
        "json",
    }
    assert image_channels(run) == {1, 3}
    # Patches and neighbours show the first channel as gray (in coloured frames: the
    # small fields of conv_a are shown in context, framed in yellow).
    grid = run["patches/conv_a"][0].value[0].astype(int)
    gray = (grid[..., 0] == grid[..., 1]) & (grid[..., 1] == grid[..., 2])
    assert grid.ndim == 3 and gray.mean() > 0.85


def test_two_channel_images_with_attribution(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    probe, labels = x_val[:2, ..., :2], y_val[:2]
    cb = GradCAMCallback(str(tmp_path), probe, labels=labels, on_error="raise")
    model = tiny_cnn((16, 16, 2))
    model.fit(x[..., :2], y, epochs=1, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["attribution/grad_cam"]] == [0, 1]
    # The last record is the trained model's Grad-CAM of the 2-channel probes.
    want = display_maps(A.grad_cam(model, probe, labels), "grad_cam")
    logged = np.reshape(run["json/attribution/grad_cam"][-1].value["maps"], want.shape)
    np.testing.assert_allclose(logged, want, atol=6e-4)


@pytest.mark.parametrize("as_uint8", [False, True])
def test_0_255_inputs_with_rescaling_inside_the_model(tmp_path, data, reference, as_uint8):
    (x, y), (x_val, y_val, m_val) = data
    to255 = lambda a: np.round(a * 255).astype(np.uint8 if as_uint8 else np.float32)  # noqa: E731
    model = tiny_cnn(preprocessing=keras.layers.Rescaling(1 / 255, name="rescale"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_all(tmp_path, model, to255(x), y, to255(x_val), y_val, m_val)
    assert not [w for w in caught if "0-255" in str(w.message)]  # the model rescales
    # The Network page shows the Rescaling layer too.
    assert set(run) - set(reference) == {"json/network/layer/rescale"}
    assert set(reference) <= set(run)
    # Same initial weights as the [0, 1] reference model: the same maps and activations.
    for tag in MAP_TAGS:
        np.testing.assert_allclose(maps(run, tag), maps(reference, tag), atol=2e-3, err_msg=tag)
    np.testing.assert_allclose(
        run["json/activations/conv_b"][0].value["mean"],
        reference["json/activations/conv_b"][0].value["mean"],
        rtol=1e-4,
        atol=1e-6,
    )
    # Patches, neighbours, the sprite and the probes show 0-255 pixels as the [0, 1] ones
    # (divided by 255).
    for tag in ("patches/conv_a", "neighbors/pixel", "embedding/sprite", "probes/images"):
        np.testing.assert_array_equal(run[tag][0].value[0], reference[tag][0].value[0], err_msg=tag)


def test_0_255_probe_images_are_shown_divided_by_255(tmp_path, data):
    (x, y), (x_val, y_val, _) = data
    model = tiny_cnn(preprocessing=keras.layers.Rescaling(1 / 255, name="rescale"))
    probe = np.round(x_val[:2] * 255)
    cb = GradCAMCallback(str(tmp_path), probe, labels=y_val[:2], on_error="raise")
    model.fit(x * 255, y, epochs=1, verbose=0, callbacks=[cb])
    shown = read_run(str(tmp_path / "cnnvis"))["probes/images"][0].value
    for img, x_probe in zip(shown, x_val[:2]):
        np.testing.assert_array_equal(img[::4, ::4, ::-1], image.to_uint8(x_probe))


def channels_first_cnn():
    inputs = keras.Input((3, 16, 16))
    h = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv_a")(inputs)
    h = keras.layers.GlobalAveragePooling2D(data_format="channels_first")(h)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("make", ["cnnvis", "filters"])
def test_channels_first_is_refused_before_the_first_epoch(tmp_path, data, make):
    (x, y), (x_val, y_val, _) = data
    x_cf, val_cf = np.moveaxis(x, -1, 1), np.moveaxis(x_val, -1, 1)
    cb = (
        CNNVisCallback(str(tmp_path), validation_data=(val_cf, y_val), options=LIGHT, budget=None)
        if make == "cnnvis"
        else FilterGridCallback(str(tmp_path))
    )
    begun = EpochsSeen()
    with pytest.raises(
        ValueError,
        match=r"^Layer 'conv_a' of model '\w+' uses data_format='channels_first'; "
        r"keras-cnnvis visualises channels-last image models \(batch, height, width, "
        r"channels\)\. Build the model with data_format='channels_last'",
    ):
        channels_first_cnn().fit(x_cf, y, epochs=1, verbose=0, callbacks=[begun, cb])
    assert begun.begun == []
    assert not (tmp_path / "cnnvis").exists()
