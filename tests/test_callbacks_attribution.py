"""GradCAMCallback, SaliencyCallback and OcclusionCallback in a real fit, read back from the
event files: exact tags and steps, overlays equal to the maps rendered, JSON maps, scalars.
"""

import os
import warnings

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import attribution as A
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.attribution import display_maps
from keras_cnnvis.callbacks.grad_cam import GradCAMCallback
from keras_cnnvis.callbacks.occlusion import OcclusionCallback
from keras_cnnvis.callbacks.saliency import SaliencyCallback


def small_cnn():
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_a")(i)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(i, keras.layers.Dense(3, activation="softmax", name="dense")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 3, 32)
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 4:10, 5:12] = True
    return x, y, masks


def _fit(model, data, callbacks, epochs=2):
    model.fit(data[0], data[1], epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)


def test_grad_cam_callback_writes_overlays_maps_and_localisation(tmp_path, data):
    model = small_cnn()
    x, y, masks = data
    probe, labels = x[:3], y[:3]
    cb = GradCAMCallback(
        str(tmp_path),
        probe,
        labels=labels,
        masks=masks,
        class_names=["a", "b", "c"],
        methods=["grad_cam", "layer_cam", "cam"],
        on_error="raise",
    )
    _fit(model, data, [cb])
    run = read_run(str(tmp_path / "cnnvis"))
    methods = ["grad_cam", "layer_cam", "cam"]
    expected = {"probes/images"}
    for m in methods:
        expected |= {f"attribution/{m}", f"json/attribution/{m}"}
        expected |= {f"localization/{m}/energy_in_mask", f"localization/{m}/pointing_game"}
    assert set(run) == expected
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    # Probes: 16x16 shown at x4 (auto scale towards 128 px, at most x4), one per probe.
    shown = run["probes/images"][-1].value
    assert len(shown) == 3 and shown[0].shape == (64, 64, 3)
    np.testing.assert_array_equal(shown[1][..., ::-1], image.to_uint8(image.upscale(probe, 4))[1])
    # The last overlays are exactly the final model's Grad-CAM (labels as target) rendered.
    maps = A.grad_cam(model, probe, labels)
    norm = display_maps(maps, "grad_cam")
    for k in range(3):
        want = image.to_uint8(
            image.upscale(image.overlay(image.display_images(probe)[k], norm[k])[None], 4)[0]
        )
        np.testing.assert_array_equal(run["attribution/grad_cam"][-1].value[k][..., ::-1], want)
    payload = run["json/attribution/grad_cam"][-1].value
    assert payload["method"] == "grad_cam" and payload["layer"] == "conv_b"
    assert payload["size"] == [16, 16] and payload["target"] == "label"
    assert payload["class_names"] == ["a", "b", "c"]
    preds = model.predict(probe, verbose=0)
    for k, p in enumerate(payload["probes"]):
        assert p["label"] == labels[k] and p["class"] == labels[k]
        assert p["prediction"] == int(preds[k].argmax())
        assert p["score"] == pytest.approx(float(preds[k, labels[k]]), rel=1e-5)
    assert len(payload["maps"]) == 3 and len(payload["maps"][0]) == 256
    np.testing.assert_allclose(np.reshape(payload["maps"], (3, 16, 16)), norm, atol=6e-4)
    energy = run["localization/grad_cam/energy_in_mask"][-1].value
    assert energy == pytest.approx(float(np.nanmean(A.energy_in_mask(maps, masks))), rel=1e-4)
    hits = run["localization/grad_cam/pointing_game"][-1].value
    assert hits == pytest.approx(float(np.nanmean(A.pointing_game(maps, masks))))


def test_maps_zero_everywhere_log_nan_localization_without_numpy_warnings(tmp_path, data):
    # (Grad-CAM of an untrained or saturated model: the ReLU leaves nothing. Energy in the
    # mask and the pointing game are undefined for every probe.)
    from keras_cnnvis.attribution import registry

    def flat(model, images, target=None):
        """A toy method whose maps are all zero."""
        return np.zeros(np.shape(images)[:3], np.float32)

    registry.register("flat", family="gradient")(flat)
    x, _, masks = data
    try:
        cb = SaliencyCallback(str(tmp_path), x[:3], masks=masks, methods="flat", on_error="raise")
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy's "Mean of empty slice"
            _fit(small_cnn(), data, [cb], epochs=1)
    finally:
        registry.unregister("flat")
    run = read_run(str(tmp_path / "cnnvis"))
    for score in ("energy_in_mask", "pointing_game"):
        values = [r.value for r in run[f"localization/flat/{score}"]]
        assert len(values) == 2 and np.isnan(values).all()


def test_saliency_and_occlusion_callbacks_share_one_probe_record(tmp_path, data):
    model = small_cnn()
    x, y, _ = data
    sal = SaliencyCallback(
        str(tmp_path),
        x[:2],
        methods=["saliency", "smoothgrad", "integrated_gradients", "guided_backprop"],
        n_samples=3,
        steps=4,
        on_error="raise",
    )
    occ = OcclusionCallback(
        str(tmp_path), x[:2], patch=4, stride=4, fill=0.5, every_n_epochs=2, on_error="raise"
    )
    _fit(model, data, [sal, occ])
    run = read_run(str(tmp_path / "cnnvis"))
    names = ["saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "occlusion"]
    assert set(run) == {"probes/images"} | {f"attribution/{m}" for m in names} | {
        f"json/attribution/{m}" for m in names
    }
    assert [r.step for r in run["probes/images"]] == [0, 1, 2]  # once per step
    assert [r.step for r in run["attribution/saliency"]] == [0, 1, 2]
    assert [r.step for r in run["attribution/occlusion"]] == [0, 2]
    payload = run["json/attribution/occlusion"][-1].value
    assert payload["target"] == "predicted" and payload["layer"] is None
    assert [p["class"] for p in payload["probes"]] == [p["prediction"] for p in payload["probes"]]
    maps = A.occlusion(model, x[:2], patch=4, stride=4, fill=0.5)
    np.testing.assert_allclose(
        np.reshape(payload["maps"], (2, 16, 16)), display_maps(maps, "occlusion"), atol=6e-4
    )


def test_a_record_finds_the_predicted_class_in_one_pass(tmp_path, data, monkeypatch):
    """The callback's pass over the probes gives the predicted classes; SmoothGrad,
    integrated gradients and occlusion explain those without running the clean probes
    again to find them (occlusion still scores them once: its drops start there)."""
    from keras_cnnvis.attribution import _common

    forward, run = [], _common.run

    def counted(model, images, target, wrt="input", *args, **kwargs):
        if wrt is None:  # a forward-only pass over the clean probes
            forward.append(len(images))
        return run(model, images, target, wrt, *args, **kwargs)

    monkeypatch.setattr(_common, "run", counted)
    model = small_cnn()
    x = data[0][:2]
    methods = ["smoothgrad", "integrated_gradients"]
    sal = SaliencyCallback(
        str(tmp_path), x, methods=methods, n_samples=3, steps=4, on_error="raise"
    )
    occ = OcclusionCallback(str(tmp_path), x, patch=4, stride=4, fill=0.5, on_error="raise")
    _fit(model, data, [sal, occ])
    assert forward == [2, 2, 2]  # occlusion's clean scores at steps 0, 1, 2; nothing else
    run_ = read_run(str(tmp_path / "cnnvis"))
    for name, maps in (
        ("smoothgrad", A.smoothgrad("saliency", model, x, n_samples=3)),
        ("integrated_gradients", A.integrated_gradients(model, x, steps=4)),
        ("occlusion", A.occlusion(model, x, patch=4, stride=4, fill=0.5)),
    ):
        payload = run_[f"json/attribution/{name}"][-1].value
        assert payload["target"] == "predicted"
        assert [p["class"] for p in payload["probes"]] == [
            p["prediction"] for p in payload["probes"]
        ]
        np.testing.assert_allclose(
            np.reshape(payload["maps"], (2, 16, 16)), display_maps(maps, name), atol=6e-4
        )


def test_large_probes_store_maps_at_most_64x64(tmp_path):
    keras.utils.set_random_seed(0)
    i = keras.Input((96, 80, 1))
    x = keras.layers.Conv2D(2, 3, strides=4, activation="relu", name="conv")(i)
    model = keras.Model(
        i, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    probe = np.random.default_rng(0).random((1, 96, 80, 1), dtype=np.float32)
    cb = GradCAMCallback(str(tmp_path), probe, on_error="raise", log_initial=False)
    model.fit(probe, np.array([1]), epochs=1, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    payload = run["json/attribution/grad_cam"][0].value
    assert payload["size"] == [64, 53] and len(payload["maps"][0]) == 64 * 53
    assert run["attribution/grad_cam"][0].value[0].shape == (96, 80, 3)


def test_two_fits_in_a_row(tmp_path, data):
    model = small_cnn()
    cb = GradCAMCallback(str(tmp_path), data[0][:2], on_error="raise")
    _fit(model, data, [cb])
    model.fit(data[0], data[1], initial_epoch=2, epochs=3, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["attribution/grad_cam"]] == [0, 1, 2, 2, 3]
    assert [r.step for r in run["probes/images"]] == [0, 1, 2, 2, 3]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, p: GradCAMCallback(d, p, layer="conv_z"), r"No layer named 'conv_z'"),
        (
            lambda d, p: GradCAMCallback(d, p, layer="gap"),
            r"grad_cam needs a layer with a spatial output",
        ),
        (
            lambda d, p: GradCAMCallback(d, p, layer="conv_a", methods="cam"),
            r"cam needs layer 'conv_a' to be followed only by",
        ),
        (
            lambda d, p: GradCAMCallback(d, p[:, :8]),
            r"GradCAMCallback: The probe images have shape \(3, 8, 16, 3\); model '\w+' "
            r"expects \(N, 16, 16, 3\)",
        ),
        (
            lambda d, p: SaliencyCallback(d, np.where(p > 0.5, np.nan, p)),
            r"SaliencyCallback: The probe images contain NaN or inf values",
        ),
        (
            lambda d, p: SaliencyCallback(d, p, labels=[0, 1]),
            r"labels must hold one class per probe image \(3\)",
        ),
        (lambda d, p: SaliencyCallback(d, p, labels=[0, 1, 3]), r"Class index 3 is out of range"),
        (lambda d, p: SaliencyCallback(d, p, target="label"), r"target='label' needs labels"),
        (
            lambda d, p: OcclusionCallback(d, p, masks=np.zeros((3, 8, 8), bool)),
            r"masks must have shape \(N, H, W\) = \(3, 16, 16\)",
        ),
        (
            lambda d, p: OcclusionCallback(d, p, patch=20),
            r"patch \(20, 20\) is larger than the probe images",
        ),
    ],
)
def test_misconfiguration_raises_before_the_first_epoch(tmp_path, data, make, message):
    model = small_cnn()
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        _fit(model, data, [epochs, make(str(tmp_path), data[0][:3])])
    assert epochs.begun == []
    assert not (tmp_path / "cnnvis").exists()


def test_constructor_validation():
    with pytest.raises(ValueError, match="GradCAMCallback methods must be some of"):
        GradCAMCallback("x", np.zeros((1, 8, 8, 3), np.float32), methods=["saliency"])
    with pytest.raises(ValueError, match="SaliencyCallback methods must be some of"):
        SaliencyCallback("x", np.zeros((1, 8, 8, 3), np.float32), methods="grad_cam")
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        SaliencyCallback("x", np.zeros((1, 8, 8, 3), np.float32), n_samples=0)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        OcclusionCallback("x", np.zeros((1, 8, 8, 3), np.float32), stride=0)


def test_every_n_epochs_zero_writes_nothing(tmp_path, data):
    model = small_cnn()
    _fit(model, data, [SaliencyCallback(str(tmp_path), data[0][:2], every_n_epochs=0)])
    assert os.listdir(tmp_path) == []
