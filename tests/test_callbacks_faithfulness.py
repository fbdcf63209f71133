"""Faithfulness scores from the attribution callbacks in a real fit, read back from the event
files: exact tags and steps, values equal to the core functions on the final model, the random
reference once per step, the JSON entry the dashboard reads, settings checked before training.
"""

import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import attribution as A
from keras_cnnvis.attribution.faithfulness import faithfulness_settings
from keras_cnnvis.callbacks import CNNVisCallback
from keras_cnnvis.callbacks.attribution_base import FAITHFULNESS
from keras_cnnvis.callbacks.grad_cam import GradCAMCallback
from keras_cnnvis.callbacks.occlusion import OcclusionCallback
from keras_cnnvis.callbacks.saliency import SaliencyCallback
import test_callbacks_attribution as attribution_tests

small_cnn = attribution_tests.small_cnn
data = attribution_tests.data  # the fixture: 32 random 16x16 images, 3 classes, masks

SCORES = ("deletion_auc", "insertion_auc", "mu_fidelity")
# Small settings: 16x16 probes, a 4x4 MuFidelity grid, two noise draws.
SETTINGS = {"steps": 4, "grid_size": 4, "nb_samples": 12, "draws": 2, "seed": 1}


def _fit(model, data, callbacks, epochs=2):
    model.fit(data[0], data[1], epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)


def _steps(run, tag):
    return [r.step for r in run[tag]]


def test_scores_at_the_right_steps_equal_the_core_functions(tmp_path, data):
    model = small_cnn()
    x, y, _ = data
    probe, labels = x[:3], y[:3]
    cam = GradCAMCallback(
        str(tmp_path),
        probe,
        labels=labels,
        methods=["grad_cam", "layer_cam"],
        faithfulness=SETTINGS,
        on_error="raise",
    )
    sal = SaliencyCallback(
        str(tmp_path),
        probe,
        labels=labels,
        every_n_epochs=2,
        faithfulness=SETTINGS,
        on_error="raise",
    )
    _fit(model, data, [cam, sal])
    run = read_run(str(tmp_path / "cnnvis"))
    faith = {t for t in run if t.startswith("faithfulness/")}
    names = ("grad_cam", "layer_cam", "saliency", "random")
    assert faith == {f"faithfulness/{m}/{s}" for m in names for s in SCORES}
    for score in SCORES:
        assert _steps(run, f"faithfulness/grad_cam/{score}") == [0, 1, 2]
        assert _steps(run, f"faithfulness/saliency/{score}") == [0, 2]
        # The reference once per step, though both callbacks logged at steps 0 and 2.
        assert _steps(run, f"faithfulness/random/{score}") == [0, 1, 2]

    # The last step holds the final model's scores: the core functions on the same probes,
    # for the labels (the callbacks' default target), at the same settings.
    maps = {
        "grad_cam": A.grad_cam(model, probe, labels),
        "layer_cam": A.layer_cam(model, probe, labels),
        "saliency": A.saliency(model, probe, labels),
    }
    settings = faithfulness_settings(**{**FAITHFULNESS, **SETTINGS})  # complete
    assert settings["subset_percent"] == 0.2 and settings["noise_size"] is None
    curve = {"target": labels, "steps": 4, "baseline": "blur"}
    mu = {"target": labels, "grid_size": 4, "nb_samples": 12, "baseline": "blur", "seed": 1}
    for name, m in maps.items():
        want = {
            "deletion_auc": A.deletion_curve(model, probe, m, **curve).mean_auc,
            "insertion_auc": A.insertion_curve(model, probe, m, **curve).mean_auc,
            "mu_fidelity": A.mu_fidelity(model, probe, m, **mu).mean,
        }
        for score in SCORES:
            got = run[f"faithfulness/{name}/{score}"][-1].value
            assert got == pytest.approx(want[score], rel=1e-5, abs=1e-6), (name, score)
        entry = run[f"json/attribution/{name}"][-1].value["faithfulness"]
        assert entry["scores"] == pytest.approx(want, abs=6e-5)
        assert entry["settings"] == settings
    reference = {
        "deletion_auc": A.random_reference("deletion", model, probe, draws=2, seed=1, **curve),
        "insertion_auc": A.random_reference("insertion", model, probe, draws=2, seed=1, **curve),
        "mu_fidelity": A.random_reference("mu_fidelity", model, probe, draws=2, **mu),
    }
    for score, result in reference.items():
        want = result.mean if score == "mu_fidelity" else result.mean_auc
        assert run[f"faithfulness/random/{score}"][-1].value == pytest.approx(want, rel=1e-5)
        for name in maps:
            entry = run[f"json/attribution/{name}"][-1].value["faithfulness"]
            assert entry["random"][score] == pytest.approx(want, abs=6e-5)

    # The entry the dashboard reads: per-probe scores and the mean curves.
    entry = run["json/attribution/grad_cam"][-1].value["faithfulness"]
    deletion = A.deletion_curve(model, probe, maps["grad_cam"], **curve)
    assert [p["deletion_auc"] for p in entry["probes"]] == pytest.approx(deletion.auc, abs=6e-5)
    assert entry["curves"]["fractions"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert entry["curves"]["deletion"] == pytest.approx(deletion.mean_curve, abs=6e-5)
    random_deletion = reference["deletion_auc"].mean_curve
    assert entry["curves"]["random_deletion"] == pytest.approx(random_deletion, abs=6e-5)
    assert len(entry["curves"]["random_insertion"]) == 5
    # The scores moved over training (the model changed between steps).
    values = [r.value for r in run["faithfulness/grad_cam/insertion_auc"]]
    assert len(set(values)) == 3


def test_off_by_default_and_on_in_cnnvis_callback_for_grad_cam_only(tmp_path, data):
    model = small_cnn()
    x, y, _ = data
    plain = GradCAMCallback(str(tmp_path / "plain"), x[:2], on_error="raise")
    _fit(model, data, [plain], epochs=1)
    assert not [t for t in read_run(str(tmp_path / "plain" / "cnnvis")) if "faithfulness" in t]

    model = small_cnn()
    cb = CNNVisCallback(
        str(tmp_path / "all"),
        validation_data=(x, y),
        n_probes=3,
        include=["grad_cam", "saliency", "occlusion"],
        options={"saliency": {"methods": ("saliency",)}, "occlusion": {"faithfulness": True}},
        expensive_every=2,
        budget=None,
        on_error="raise",
    )
    _fit(model, data, [cb])
    run = read_run(str(tmp_path / "all" / "cnnvis"))
    faith = {t.split("/")[1] for t in run if t.startswith("faithfulness/")}
    # grad_cam's monitor scores both its methods; saliency is opt-in (not asked here),
    # occlusion was asked for through options=.
    assert faith == {"grad_cam", "layer_cam", "occlusion", "random"}
    # Grad-CAM's maps every epoch, its scores on the expensive monitors' schedule (as they,
    # not on the untrained model).
    assert _steps(run, "json/attribution/grad_cam") == [0, 1, 2]
    assert _steps(run, "faithfulness/layer_cam/mu_fidelity") == [2]
    assert "faithfulness" not in run["json/attribution/grad_cam"][0].value
    assert "faithfulness" not in run["json/attribution/grad_cam"][1].value
    assert _steps(run, "faithfulness/occlusion/deletion_auc") == [2]  # not the untrained
    assert _steps(run, "faithfulness/random/insertion_auc") == [2]
    entry = run["json/attribution/grad_cam"][-1].value["faithfulness"]
    assert entry["settings"]["steps"] == 10 and entry["settings"]["baseline"] == "blur"
    assert len(entry["curves"]["deletion"]) == 11
    assert "faithfulness" not in run["json/attribution/saliency"][-1].value


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda d, p: GradCAMCallback(d, p, faithfulness={"grid_size": 20}),
            r"GradCAMCallback: grid_size 20 exceeds the image size \(16x16\)",
        ),
        (
            lambda d, p: SaliencyCallback(d, p, faithfulness={"baseline": "black"}),
            r"SaliencyCallback: Unknown baseline 'black'",
        ),
        (
            lambda d, p: OcclusionCallback(d, p, faithfulness={"steps": 257}),
            r"OcclusionCallback: steps must be at most the number of pixels \(256\)",
        ),
    ],
)
def test_settings_that_do_not_fit_the_probes_raise_before_the_first_epoch(
    tmp_path, data, make, message
):
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        _fit(small_cnn(), data, [epochs, make(str(tmp_path), data[0][:3])])
    assert epochs.begun == []
    assert not (tmp_path / "cnnvis").exists()


def test_constructor_checks_the_names():
    probe = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=r"GradCAMCallback: Unknown faithfulness setting\(s\) "):
        GradCAMCallback("x", probe, faithfulness={"stepz": 3})
    with pytest.raises(ValueError, match="faithfulness must be True, False or a dict"):
        SaliencyCallback("x", probe, faithfulness="yes")
    with pytest.raises(ValueError, match="draws must be an int >= 0"):
        OcclusionCallback("x", probe, faithfulness={"draws": -1})


def test_a_failing_score_leaves_the_maps_and_warns_once(tmp_path, data):
    from keras_cnnvis.attribution import registry

    def spiky(model, images, target=None):
        """A toy method whose maps hold an infinite value, which the scores refuse."""
        maps = np.asarray(images, np.float32).mean(-1)
        maps[:, 0, 0] = np.inf
        return maps

    registry.register("spiky", family="gradient")(spiky)
    try:
        cb = SaliencyCallback(str(tmp_path), data[0][:2], methods="spiky", faithfulness=True)
        with pytest.warns(RuntimeWarning, match="the faithfulness scores failed at step 0") as seen:
            _fit(small_cnn(), data, [cb])
    finally:
        registry.unregister("spiky")
    assert len([w for w in seen if "faithfulness" in str(w.message)]) == 1
    run = read_run(str(tmp_path / "cnnvis"))
    assert _steps(run, "attribution/spiky") == [0, 1, 2]
    assert not [t for t in run if t.startswith("faithfulness/")]
    assert "faithfulness" not in run["json/attribution/spiky"][-1].value


def test_a_constant_map_has_no_mu_fidelity_and_array_settings_are_named(tmp_path, data):
    from keras_cnnvis.attribution import registry

    def flat(model, images, target=None):
        """A toy method whose maps are all zero: MuFidelity's correlation is undefined."""
        return np.zeros(np.shape(images)[:3], np.float32)

    registry.register("flat", family="gradient")(flat)
    try:
        grey = np.full(3, 0.5, np.float32)  # a colour as the baseline
        cb = SaliencyCallback(
            str(tmp_path),
            data[0][:2],
            methods="flat",
            faithfulness={**SETTINGS, "baseline": grey},
            on_error="raise",
        )
        _fit(small_cnn(), data, [cb], epochs=1)
    finally:
        registry.unregister("flat")
    run = read_run(str(tmp_path / "cnnvis"))
    assert np.isnan(run["faithfulness/flat/mu_fidelity"][-1].value)
    assert np.isfinite(run["faithfulness/random/mu_fidelity"][-1].value)
    entry = run["json/attribution/flat"][-1].value["faithfulness"]
    assert entry["scores"]["mu_fidelity"] is None
    assert [p["mu_fidelity"] for p in entry["probes"]] == [None, None]
    assert entry["settings"]["baseline"] == "array"
    # An all-zero map ranks pixels row-major: still a curve, a number.
    assert entry["scores"]["deletion_auc"] == pytest.approx(
        run["faithfulness/flat/deletion_auc"][-1].value, abs=6e-5
    )


def test_faithfulness_every_n_epochs_scores_some_records_and_the_last(tmp_path, data):
    x, _, _ = data
    cb = GradCAMCallback(
        str(tmp_path), x[:2], faithfulness={"every_n_epochs": 2, "nb_samples": 8}, on_error="raise"
    )
    _fit(small_cnn(), data, [cb], epochs=3)
    run = read_run(str(tmp_path / "cnnvis"))
    assert _steps(run, "json/attribution/grad_cam") == [0, 1, 2, 3]  # maps every epoch
    assert _steps(run, "faithfulness/grad_cam/deletion_auc") == [0, 2, 3]  # 3: the last epoch
    with_scores = [r.step for r in run["json/attribution/grad_cam"] if "faithfulness" in r.value]
    assert with_scores == [0, 2, 3]
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 1; got 0"):
        GradCAMCallback(str(tmp_path), x[:2], faithfulness={"every_n_epochs": 0})


def test_faithfulness_log_initial_false_leaves_the_untrained_record_unscored(tmp_path, data):
    x, _, _ = data
    settings = {"every_n_epochs": 2, "log_initial": False, "nb_samples": 8}
    cb = GradCAMCallback(str(tmp_path), x[:2], faithfulness=settings, on_error="raise")
    _fit(small_cnn(), data, [cb], epochs=2)
    run = read_run(str(tmp_path / "cnnvis"))
    assert _steps(run, "json/attribution/grad_cam") == [0, 1, 2]  # the maps from the start
    assert _steps(run, "faithfulness/grad_cam/deletion_auc") == [2]
    assert _steps(run, "faithfulness/random/deletion_auc") == [2]
    entry = run["json/attribution/grad_cam"][-1].value["faithfulness"]
    assert "log_initial" not in entry["settings"] and "every_n_epochs" not in entry["settings"]
    with pytest.raises(ValueError, match="log_initial must be True or False; got 'no'"):
        GradCAMCallback(str(tmp_path), x[:2], faithfulness={"log_initial": "no"})
