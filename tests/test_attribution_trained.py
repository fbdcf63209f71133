"""Attribution on the demo CNN trained on `shapes`: Grad-CAM localises the object, integrated
gradients are complete, the sanity check separates Grad-CAM from guided backprop.
"""

import keras
import numpy as np
import pytest

from keras_cnnvis import attribution as A
from keras_cnnvis.gradients import iter_layers


@pytest.fixture(scope="module")
def demo_copy(trained_demo):
    """A clone of the shared trained model (the sanity check changes weights in place)."""
    model = trained_demo["model"]
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def test_grad_cam_energy_lies_on_the_object(trained_demo):
    model, x, y, masks = (trained_demo[k] for k in ("model", "x_val", "y_val", "masks_val"))
    area = masks.mean()  # what a uniform map scores, for both measures
    maps = A.grad_cam(model, x, y)
    energy = float(np.nanmean(A.energy_in_mask(maps, masks)))
    hits = float(np.nanmean(A.pointing_game(maps, masks)))
    # The best an 8x8 map can do: each conv4 cell holding the share of it the object covers.
    side = model.get_layer("conv4").output.shape[1]
    cells = masks.reshape(len(masks), side, 64 // side, side, 64 // side).mean(axis=(2, 4))
    ceiling = float(np.nanmean(A.energy_in_mask(cells, masks)))
    print(
        f"\nGrad-CAM on {len(x)} validation images (val acc {trained_demo['val_accuracy']:.3f}): "
        f"energy in mask {energy:.3f}, pointing game {hits:.3f}, mask area {area:.3f}, "
        f"best possible {side}x{side} map {ceiling:.3f}"
    )
    assert 0.55 < ceiling < 0.7  # measured 0.61: no coarse map can put much more inside
    # Measured 0.17 and 0.36 against an area of 0.08 (val acc 0.88); demand a clear margin.
    assert energy > 1.5 * area
    assert hits > 3 * area
    # LayerCAM on the same layer keeps the gradients' positions and localises better still.
    layer = float(np.nanmean(A.energy_in_mask(A.layer_cam(model, x, y), masks)))
    print(f"LayerCAM energy in mask {layer:.3f}")
    assert layer > energy


def test_localisation_scores_by_hand():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0  # 3 of 4 inside, peak inside
    maps[1, 0, 1], maps[1, 2, 3] = -1.0, 2.0  # magnitudes: 1 of 3 inside, peak outside
    np.testing.assert_allclose(A.energy_in_mask(maps, masks), [0.75, 1 / 3])
    np.testing.assert_array_equal(A.pointing_game(maps, masks), [1, 0])
    # (2, 3) is one pixel from the mask's corner (1, 1)? No: two rows and two columns.
    np.testing.assert_array_equal(A.pointing_game(maps, masks, tolerance=2), [1, 1])
    np.testing.assert_array_equal(A.pointing_game(maps, masks, tolerance=1), [1, 0])
    assert np.isnan(A.energy_in_mask(np.zeros((1, 4, 4)), masks[:1])[0])


def test_integrated_gradients_complete_on_the_relu_demo_model(trained_demo):
    from keras_cnnvis.gradients import model_overrides

    model, x, y = trained_demo["model"], trained_demo["x_val"][:8], trained_demo["y_val"][:8]
    ig = A.integrated_gradients(model, x, y, steps=128)
    with model_overrides(model, logits=True):
        delta = (
            np.asarray(model(x))[np.arange(8), y]
            - np.asarray(model(np.zeros_like(x)))[np.arange(8), y]
        )
    # Within 1% (of each difference, or of the mean difference for those near zero).
    np.testing.assert_allclose(
        ig.sum(axis=(1, 2)), delta, rtol=1e-2, atol=1e-2 * np.abs(delta).mean()
    )


def test_guided_backprop_of_a_middle_unit_stays_in_its_receptive_field(trained_demo):
    from keras_cnnvis.gradients import FeatureExtractor

    model, x = trained_demo["model"], trained_demo["x_val"][:1]
    # The conv2 channel most active at (10, 12) of this image: its guided backprop map.
    (acts,), _ = FeatureExtractor(model, ["conv2"])(x)
    channel = int(acts[0, 10, 12].argmax())
    assert acts[0, 10, 12, channel] > 0
    maps = A.guided_backprop(model, x, ("conv2", channel, 10, 12))
    rows, cols = np.nonzero(maps[0])
    assert rows.size > 10
    # conv2 (3x3) on pool1 rows 9..11 = conv1 rows 18..23, whose 5x5 windows read input
    # rows 16..25; columns 11..13 -> 22..27 -> 20..29. Nothing outside that window.
    assert rows.min() >= 16 and rows.max() <= 25 and cols.min() >= 20 and cols.max() <= 29


def test_sanity_check_separates_grad_cam_from_guided_backprop(demo_copy, trained_demo):
    before = [w.copy() for w in demo_copy.get_weights()]
    x, y = trained_demo["x_val"][:12], trained_demo["y_val"][:12]
    cam = A.sanity_check("grad_cam", demo_copy, x, y)
    guided = A.sanity_check("guided_backprop", demo_copy, x, y)
    print("\n" + cam.table() + "\n" + guided.table())
    # Every layer with weights, top first (whatever the demo architecture is today).
    weighted = [i.path for i in iter_layers(demo_copy) if i.layer.trainable_weights]
    assert cam.layers == weighted[::-1] and cam.layers[:2] == ["predictions", "features"]
    assert cam.spearman.shape == cam.ssim.shape == (len(weighted), 12)
    assert cam.passed and not guided.passed
    # Randomising the classifier head changes Grad-CAM far more than guided backprop.
    assert cam.mean_ssim[1] < guided.mean_ssim[1] - 0.3
    for a, b in zip(before, demo_copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sanity_check_restores_weights_when_the_method_raises(demo_copy, trained_demo):
    before = [w.copy() for w in demo_copy.get_weights()]
    calls = []

    def flaky(model, images, target=None, logits=True):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("method failed mid-check")
        return A.saliency(model, images, target, logits)

    with pytest.raises(RuntimeError, match="method failed mid-check"):
        A.sanity_check(flaky, demo_copy, trained_demo["x_val"][:2])
    for a, b in zip(before, demo_copy.get_weights()):
        np.testing.assert_array_equal(a, b)
