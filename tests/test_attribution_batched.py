"""The batched paths of the perturbation and path methods against brute-force references:
integrated gradients with several path points per compiled call, occlusion copies filled in
place, and the perturbed copies of the faithfulness scores built per run of one image.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis import attribution as A
from keras_cnnvis.attribution._perturb import swapped_copies
from keras_cnnvis.attribution.integrated_gradients import path_points, points_per_call
from keras_cnnvis.attribution.occlusion import patch_positions
from test_attribution_methods import cnn as methods_cnn


def cnn(seed=0):
    return methods_cnn(seed, activation=None)  # logits


def batch(n=3, seed=1):
    return np.random.default_rng(seed).random((n, 12, 12, 3), dtype=np.float32)


def brute_force_ig(model, x, classes, baseline, steps, score=None):
    """One tape per path point: sum_k w_k * grad f(x0 + a_k (x - x0)) * (x - x0)."""
    alphas, weights = path_points(steps, "gausslegendre")
    total = np.zeros_like(x, dtype=np.float64)
    for alpha, weight in zip(alphas, weights):
        point = tf.constant(baseline + np.float32(alpha) * (x - baseline))
        with tf.GradientTape() as tape:
            tape.watch(point)
            out = model(point) if score is None else score(point)
            chosen = out if score is not None else tf.gather(out, classes, batch_dims=1)
            summed = tf.reduce_sum(chosen)
        total += weight * tape.gradient(summed, point).numpy()
    return (total * (x - baseline)).sum(-1)


@pytest.mark.parametrize("steps, batch_size", [(8, 64), (7, 6), (5, 2)])
def test_integrated_gradients_with_several_points_per_call_equal_one_tape_per_point(
    steps, batch_size
):
    """3 images: 21 points per call at batch 64, 2 at batch 6 (the last call has one),
    one at batch 2 (images split over two calls, as before)."""
    model, x = cnn(), batch(3)
    classes = np.array([0, 3, 1])
    ig = A.integrated_gradients(model, x, classes, steps=steps, batch_size=batch_size)
    want = brute_force_ig(model, x, classes, np.zeros_like(x), steps)
    np.testing.assert_allclose(ig, want, rtol=1e-5, atol=1e-6)
    one = A.integrated_gradients(model, x, classes, steps=steps, batch_size=3)  # a call/point
    np.testing.assert_allclose(ig, one, rtol=1e-6, atol=1e-7)


def test_grouped_points_keep_a_hidden_unit_target_per_image():
    model, x = cnn(), batch(2)
    unit = ("c2", 5)
    ig = A.integrated_gradients(model, x, unit, baseline=0.25, steps=6, batch_size=64)
    c2 = keras.Model(model.inputs, model.get_layer("c2").output)
    want = brute_force_ig(
        model,
        x,
        None,
        np.full_like(x, 0.25),
        6,
        score=lambda t: tf.reduce_mean(c2(t)[..., 5], axis=(1, 2)),
    )
    np.testing.assert_allclose(ig, want, rtol=1e-5, atol=1e-6)


def test_occlusion_copies_filled_in_place_equal_the_masked_formula():
    model, x = cnn(), batch(2)
    classes = np.array([2, 1])
    fill = np.array([0.2, 0.5, 0.9], np.float32)
    maps = A.occlusion(model, x, classes, patch=5, stride=3, fill=fill, batch_size=10)
    positions = patch_positions(12, 5, 3)  # [0, 3, 6, 7]
    total, count = np.zeros((2, 12, 12)), np.zeros((12, 12))
    clean = model.predict(x, verbose=0)[np.arange(2), classes]
    for y in positions:
        for x0 in positions:
            mask = np.zeros((12, 12, 1), np.float32)
            mask[y : y + 5, x0 : x0 + 5] = 1
            copies = x * (1 - mask) + fill * mask
            drop = clean - model.predict(copies, verbose=0)[np.arange(2), classes]
            total += drop[:, None, None] * mask[..., 0]
            count += mask[..., 0]
    np.testing.assert_allclose(maps, total / count, rtol=1e-5, atol=1e-6)


def test_swapped_copies_equal_np_where_on_gathered_images():
    rng = np.random.default_rng(0)
    kept = rng.random((4, 5, 6, 3), dtype=np.float32)
    swapped = rng.random((4, 5, 6, 3), dtype=np.float32)
    image = np.array([0, 0, 1, 1, 1, 3, 2, 2])  # runs, in any order
    mask = rng.random((8, 5, 6)) < 0.4
    out = swapped_copies(image, mask, swapped, kept)
    np.testing.assert_array_equal(out, np.where(mask[..., None], swapped[image], kept[image]))
    flat = swapped_copies(
        image, mask.reshape(8, 30), swapped.reshape(4, 30, 3), kept.reshape(4, 30, 3)
    )
    np.testing.assert_array_equal(flat.reshape(out.shape), out)


def test_points_per_call_follow_the_batch_and_the_backward_budget():
    from keras_cnnvis.demo import build_demo_model
    from keras_cnnvis.model.compiled import example_bytes

    demo = build_demo_model((64, 64, 3), 5)
    # A forward+backward pass keeps 1.16 MB per image: 86 images in 96 MiB.
    assert example_bytes(demo, backward=True) == 1163796
    assert points_per_call(demo, (8, 64, 64, 3), 64) == 8
    assert points_per_call(demo, (8, 64, 64, 3), 256) == 86 // 8
    assert points_per_call(demo, (64, 64, 64, 3), 64) == 1
    assert points_per_call(demo, (100, 64, 64, 3), 64) == 1  # images split, one point
    big = keras.Sequential(
        [keras.Input((224, 224, 3)), keras.layers.Conv2D(64, 7, strides=2, padding="same")]
    )  # 3.8 MB forward+backward per image: 26 in 96 MiB
    assert points_per_call(big, (8, 224, 224, 3), 64) == 3


def test_perturbed_copies_default_to_the_forward_budget():
    from keras_cnnvis.attribution._perturb import score_clean

    small = cnn()
    assert score_clean(small, batch(2), None, False, None).batch_size == 256
    assert score_clean(small, batch(2), None, False, 7).batch_size == 7
    big = keras.Sequential(
        [
            keras.Input((224, 224, 3)),
            keras.layers.Conv2D(64, 7, strides=2, padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )  # 3.8 MB per image (input and a 112x112x64 map): 26 copies in 96 MiB
    x = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    assert score_clean(big, x, None, False, None).batch_size == 26
    maps = A.occlusion(big, x, 0, patch=112, stride=112)
    np.testing.assert_allclose(
        maps, A.occlusion(big, x, 0, patch=112, stride=112, batch_size=3), rtol=1e-5, atol=1e-6
    )
