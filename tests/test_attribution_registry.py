"""The attribution-method registry: a toy method registered in the test is offered by
SaliencyCallback in a real fit and lands in the Attribution page's data; the old method lists
are derived from it; what each entry declares (layer, ReLU, checks, settings) is enforced.
"""

import keras
import numpy as np
import pytest

from callback_helpers import EpochsSeen, random_data, small_cnn
from eventfiles import read_run
from keras_cnnvis import attribution as A
from keras_cnnvis.attribution import registry
from keras_cnnvis.callbacks import attribution_base, grad_cam, saliency
from keras_cnnvis.callbacks.grad_cam import GradCAMCallback
from keras_cnnvis.callbacks.saliency import SaliencyCallback
from keras_cnnvis.rendering import image


def edges(model, images, target=None, power=1.0):
    """The toy method: the gradient magnitude of each image's channel mean, to a power."""
    gray = np.asarray(images, np.float32).mean(-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    return (np.hypot(gy, gx) ** power).astype(np.float32)


@pytest.fixture
def registered_edges():
    registry.register("edges", family="gradient", options=("power",), defaults={"power": 2.0})(
        edges
    )
    try:
        yield
    finally:
        registry.unregister("edges")


def test_a_registered_method_is_offered_logged_and_listed_by_the_plugin(tmp_path, registered_edges):
    assert "edges" in saliency.GRADIENT_METHODS and "edges" in A.METHODS
    assert "edges" not in grad_cam.CAM_METHODS + attribution_base.SMOOTH_METHODS
    assert A.get_method("edges") is edges
    model = small_cnn()
    x, y = random_data()
    probe = x[:3]
    cb = SaliencyCallback(str(tmp_path), probe, methods=("edges", "saliency"), on_error="raise")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])

    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {"probes/images"} | {
        f"{kind}/{m}" for kind in ("attribution", "json/attribution") for m in ("edges", "saliency")
    }
    assert [r.step for r in run["json/attribution/edges"]] == [0, 1, 2]
    # The maps are the toy's (with its registered default power=2), scaled by their 99th
    # percentile as every gradient-style method is.
    gray = probe.mean(-1)
    raw = np.stack([np.hypot(*np.gradient(g)) ** 2 for g in gray])
    top = np.percentile(raw.reshape(3, -1), 99, axis=1)[:, None, None]
    shown = np.clip(raw / top, 0, 1)
    payload = run["json/attribution/edges"][-1].value
    assert payload["method"] == "edges" and payload["layer"] is None
    assert payload["size"] == [16, 16] and payload["target"] == "predicted"
    np.testing.assert_allclose(np.reshape(payload["maps"], (3, 16, 16)), shown, atol=6e-4)
    predictions = model.predict(probe, verbose=0).argmax(-1)
    assert [p["prediction"] for p in payload["probes"]] == predictions.tolist()
    for k in range(3):
        want = image.to_uint8(
            image.upscale(image.overlay(image.display_images(probe)[k], shown[k])[None], 4)[0]
        )
        overlay = run["attribution/edges"][-1].value[k][..., ::-1]
        assert np.abs(overlay.astype(int) - want).max() <= 1

    # The Attribution page lists it among the run's methods and serves its record.
    from test_plugin_routes import get_json, make_client

    client = make_client(tmp_path, {"cnnvis": 0, "images": 0})
    tags = get_json(client, "tags", run="cnnvis", kind="attribution")
    assert tags["names"] == ["edges", "saliency"]
    assert tags["json"]["edges"] == "json/attribution/edges"
    served = get_json(client, "data", run="cnnvis", tag="json/attribution/edges", step=2)
    assert served == payload


def test_unregistered_methods_are_gone(registered_edges):
    with pytest.raises(ValueError, match=r"An attribution method named 'edges' is registered"):
        registry.register("edges", family="gradient")(edges)
    registry.unregister("edges")
    assert "edges" not in saliency.GRADIENT_METHODS and "edges" not in A.METHODS
    with pytest.raises(ValueError, match=r"SaliencyCallback methods must be some of"):
        SaliencyCallback("logs", np.zeros((1, 16, 16, 3), np.float32), methods="edges")
    with pytest.raises(ValueError, match=r"Unknown attribution method 'edges'"):
        A.get_method("edges")


def test_the_old_lists_are_derived_from_the_registry():
    assert grad_cam.CAM_METHODS == (
        "grad_cam",
        "grad_cam_plus_plus",
        "layer_cam",
        "guided_grad_cam",
        "score_cam",
        "cam",
    )
    assert saliency.GRADIENT_METHODS == (
        "saliency",
        "smoothgrad",
        "integrated_gradients",
        "guided_backprop",
        "deconvnet",
        "gradient_x_input",
    )
    assert attribution_base.SMOOTH_METHODS == (
        "grad_cam",
        "grad_cam_plus_plus",
        "layer_cam",
        "score_cam",
        "cam",
        "occlusion",
    )
    assert set(A.METHODS) == set(registry.REGISTRY)
    assert registry.names("occlusion") == ("occlusion",)
    assert A.METHODS["smoothgrad"].__name__ == "smoothgrad"
    with pytest.raises(TypeError):
        A.METHODS["mine"] = edges  # read-only: register() is the way in


def test_each_method_takes_only_its_own_settings():
    settings = {"layer": "conv_b", "n_samples": 3, "noise_level": 0.1, "steps": 4, "patch": 5}
    assert registry.lookup("saliency").kwargs(settings) == {}
    assert registry.lookup("smoothgrad").kwargs(settings) == {"n_samples": 3, "noise_level": 0.1}
    assert registry.lookup("integrated_gradients").kwargs(settings) == {"steps": 4}
    assert registry.lookup("grad_cam").kwargs(settings) == {"layer": "conv_b"}
    assert registry.lookup("occlusion").kwargs(settings) == {"patch": 5}
    toy = registry.Method("toy", edges, "gradient", options=("power",), defaults={"power": 2})
    assert toy.kwargs({}) == {"power": 2} and toy.kwargs({"power": 3}) == {"power": 3}


def _tanh_cnn():
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="tanh", name="conv")(i)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, keras.layers.Dense(2, name="dense")(x), name="tanh_cnn")


def test_declared_needs_are_checked_against_the_model():
    model = _tanh_cnn()
    probe = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=r"deconvnet needs ReLU activations; model 'tanh_cnn'"):
        registry.lookup("deconvnet").check(model, probe)
    with pytest.raises(ValueError, match=r"layer_cam needs a layer with a spatial output"):
        registry.lookup("layer_cam").check(model, probe, layer="gap")
    registry.lookup("layer_cam").check(model, probe, layer="conv")  # fine
    registry.lookup("cam").check(model, probe, layer="conv")  # GAP + Dense head: fine
    with pytest.raises(ValueError, match=r"patch \(17, 17\) is larger than the probe images"):
        registry.lookup("occlusion").check(model, probe, patch=17)
    with pytest.raises(ValueError, match=r"fill must be a number or a \(3,\) colour"):
        registry.lookup("occlusion").check(model, probe, fill=[0.0, 1.0])


def test_a_method_validator_runs_before_the_first_epoch(tmp_path):
    def whole_layer(model, images, target=None, layer="last_conv"):
        return np.ones(np.shape(images)[:3], np.float32)

    def only_conv_a(model, probe, layer="last_conv", **kwargs):
        if layer != "conv_a":
            raise ValueError(f"whole_layer reads conv_a only; got layer={layer!r}.")

    registry.register("whole_layer", "cam", needs_layer=True, validate=only_conv_a)(whole_layer)
    try:
        assert "whole_layer" in grad_cam.CAM_METHODS
        model = small_cnn()
        x, y = random_data()
        epochs = EpochsSeen()
        cb = GradCAMCallback(str(tmp_path), x[:2], layer="conv_b", methods="whole_layer")
        with pytest.raises(
            ValueError, match=r"^whole_layer reads conv_a only; got layer='conv_b'\.$"
        ):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[epochs, cb])
        assert epochs.begun == []
    finally:
        registry.unregister("whole_layer")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "maps"}, r"family must be one of \('cam', 'gradient', 'occlusion'\)"),
        ({"family": "cam", "display": "bright"}, r"display must be one of"),
        ({"family": "cam", "display": "smooth"}, r"'grad_cam' is registered already"),
    ],
)
def test_bad_registrations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        registry.register("grad_cam", **kwargs)
    assert registry.lookup("grad_cam").fn is A.grad_cam
