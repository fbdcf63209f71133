"""patches.mining: streamed top-k equals a brute-force top-k over the whole dataset, patches
are exactly what the unit sees, every data source gives the same answer; plus the truncated
forward pass (model.forward_until) it is built on.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnvis.inputs import image_batches
from keras_cnnvis.model import FeatureExtractor, capture_outputs, forward_until
from keras_cnnvis.model.receptive_field import receptive_field
from keras_cnnvis.patches import PatchMiner, max_activating_patches, seen_slices
from patch_helpers import random_images, seeded_small

L = keras.layers


@pytest.fixture(scope="module")
def model():
    return seeded_small()


@pytest.fixture(scope="module")
def images():
    return random_images()


def brute_force(model, layer, images, k, batch_size=8):
    """Top-k per channel over the full feature maps of every image at once."""
    (maps,), _ = FeatureExtractor(model, [layer], batch_size=batch_size)(images)
    n, h, w, c = maps.shape
    flat = maps.reshape(n, h * w, c)
    best = flat.max(axis=1)  # (N, C)
    where = flat.argmax(axis=1)
    out = []
    for ch in range(c):
        order = sorted(range(n), key=lambda i: (-best[i, ch], i))[:k]
        out.append([(i, best[i, ch], divmod(int(where[i, ch]), w)) for i in order])
    return out, maps


def reference_patch(image, rf, row, col, pad_value):
    top, left, bottom, right = rf.window(row, col)
    t, l, b, r = rf.box(row, col)
    patch = np.full((bottom - top, right - left, image.shape[-1]), pad_value, np.float32)
    patch[t - top : b - top, l - left : r - left] = image[t:b, l:r]
    return patch


@pytest.mark.parametrize("layer", ["first", "second", "block/deep"])
def test_streamed_top_k_equals_brute_force(model, images, layer):
    k = 6
    top = max_activating_patches(model, layer, images, k=k, batch_size=8, pad_value=0.25)
    ref, maps = brute_force(model, layer, images, k)
    rf = receptive_field(model, layer)
    assert top.layer == layer and top.n_images == 45 and top.channels == list(range(maps.shape[-1]))
    assert top.patches.shape == (maps.shape[-1], k) + rf.size + (3,)
    for ch, entries in enumerate(ref):
        np.testing.assert_array_equal(top.indices[ch], [i for i, _, _ in entries])
        np.testing.assert_allclose(top.values[ch], [v for _, v, _ in entries], rtol=1e-6)
        np.testing.assert_array_equal(top.positions[ch], [p for _, _, p in entries])
        for slot, (i, _, (r, c)) in enumerate(entries):
            assert tuple(top.boxes[ch, slot]) == rf.box(r, c)
            np.testing.assert_array_equal(
                top.patches[ch, slot], reference_patch(images[i], rf, r, c, 0.25)
            )
    assert np.all(np.diff(top.values, axis=1) <= 0)


def test_patch_holds_everything_the_unit_sees(model, images):
    # Paste the seen part of each patch into an empty image: the unit's value is unchanged.
    top = max_activating_patches(model, "block/deep", images, channels=[1, 4], k=4)
    rf = top.receptive_field
    for row, ch in enumerate(top.channels):
        for slot in range(4):
            r, c = top.positions[row, slot]
            t, l, b, rr = top.boxes[row, slot]
            wt, wl, _, _ = rf.window(r, c)
            canvas = np.zeros((1, 22, 21, 3), np.float32)
            canvas[0, t:b, l:rr] = top.patches[row, slot, t - wt : b - wt, l - wl : rr - wl]
            with capture_outputs(model, ["block/deep"]) as cap:
                model(canvas, training=False)
            value = float(cap["block/deep"][0, r, c, ch])
            np.testing.assert_allclose(value, top.values[row, slot], rtol=1e-5, atol=1e-6)
    # ... and a patch is not the whole image: the unit's field is smaller than the image.
    assert rf.size == (13, 13)


def test_context_regions_are_the_image_around_the_field(model, images):
    # 'first' (3x3 field on 22x21 images) is small: each patch keeps its 12x12 region.
    miner = PatchMiner(model, ["first", "second"], channels=[[1, 3, 4], [0]], k=4)
    for batch in image_batches(images, 16):
        miner.update(batch)
    first, second = miner.results()
    rf = first.receptive_field
    assert first.context.shape == (3, 4, 12, 12, 3)  # max(4 x 3, ceil(22 / 3)) per axis
    assert second.context.shape == (1, 4, 20, 20, 3)  # 5x5 field: max(20, 8), max(20, 7)
    # Memory stays k x channels x region, whatever the data size.
    assert miner._tops[0].context_store.shape == (4, 3, 12, 12, 3)
    for c, j in np.ndindex(3, 4):
        r, col = first.positions[c, j]
        top, left, _, _ = rf.window(r, col)
        # Centred on the 3x3 window (top - 5), then moved inside the 22x21 image.
        oy, ox = min(max(top - 5, 0), 22 - 12), min(max(left - 5, 0), 21 - 12)
        assert tuple(first.context_origins[c, j]) == (oy, ox)
        np.testing.assert_array_equal(
            first.context[c, j], images[first.indices[c, j]][oy : oy + 12, ox : ox + 12]
        )
        # The patch is the same pixels, at the window's place in the region.
        t, l, b, rr = first.boxes[c, j]
        np.testing.assert_array_equal(
            first.context[c, j, t - oy : b - oy, l - ox : rr - ox],
            first.patches[c, j, t - top : b - top, l - left : rr - left],
        )
    # Without context (or for a large field) nothing is kept.
    none = max_activating_patches(model, "first", images, channels=[1], k=2, context=False)
    assert none.context is None and none.context_origins is None
    with pytest.raises(ValueError, match="context must be 'auto', True or False"):
        PatchMiner(model, ["first"], k=2, context="always")


def test_ties_prefer_earlier_images():
    i = keras.Input((8, 8, 1))
    x = L.Conv2D(
        2,
        3,
        activation="relu",
        name="c",
        bias_initializer=keras.initializers.Constant([0.0, -100.0]),
    )(i)
    model = keras.Model(i, x)
    rng = np.random.default_rng(0)
    # Four distinct images, each repeated many times in random order: many exact ties.
    which = rng.integers(0, 4, 150)
    distinct = rng.random((4, 8, 8, 1), dtype=np.float32)
    data = distinct[which]
    top = max_activating_patches(model, "c", data, k=5, batch_size=64)
    np.testing.assert_array_equal(top.values[1], np.zeros(5))  # dead channel: all ties
    np.testing.assert_array_equal(top.indices[1], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(top.positions[1], np.zeros((5, 2)))
    best = model(distinct).numpy()[..., 0].reshape(4, -1).max(1)[which]
    expected = sorted(range(150), key=lambda n: (-best[n], n))[:5]
    np.testing.assert_array_equal(top.indices[0], expected)
    assert len(set(which[expected])) < 5  # the top-5 includes repeats of one image


class Batches(keras.utils.PyDataset):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return 4

    def __getitem__(self, i):
        part = self.x[i * 12 : (i + 1) * 12]
        return part, np.zeros(len(part))


def test_every_data_source_gives_the_same_result(model, images):
    labels = np.arange(45)
    expected = max_activating_patches(
        model, "second", images, channels=[0, 2, 5], k=7, batch_size=16
    )

    def odd_batches():
        for start in range(0, 45, 7):
            yield images[start : start + 7], labels[start : start + 7]

    sources = {
        "tuple": (images, labels),
        "dataset unbatched": tf.data.Dataset.from_tensor_slices((images, labels)),
        "dataset batched": tf.data.Dataset.from_tensor_slices(images).batch(10),
        "generator of batches": odd_batches(),
        "generator of images": (img for img in images),
        "list of batches": [images[:20], images[20:]],
        "PyDataset": Batches(images),
    }
    for name, source in sources.items():
        got = max_activating_patches(
            model, "second", source, channels=[0, 2, 5], k=7, batch_size=16
        )
        assert got.n_images == 45, name
        np.testing.assert_array_equal(got.indices, expected.indices, err_msg=name)
        np.testing.assert_array_equal(got.positions, expected.positions, err_msg=name)
        np.testing.assert_allclose(got.values, expected.values, rtol=1e-5, err_msg=name)
        np.testing.assert_array_equal(got.patches, expected.patches, err_msg=name)


def test_image_batches_groups_single_images():
    x = np.ones((10, 4, 4, 1), np.float32)
    assert [b.shape[0] for b in image_batches(iter(x), batch_size=4)] == [4, 4, 2]
    assert [b.shape[0] for b in image_batches(x, batch_size=3)] == [3, 3, 3, 1]
    with pytest.raises(
        ValueError, match=r"\(N, height, width, channels\) array; got shape \(4, 4, 1\)"
    ):
        list(image_batches(x[0]))
    with pytest.raises(ValueError, match="got shape \\(4, 4\\)"):
        list(image_batches([np.ones((4, 4))]))


def test_miner_mines_several_layers_in_one_pass(model, images):
    miner = PatchMiner(model, ["first", "block/deep"], channels=[[0, 1], None], k=3)
    for batch in image_batches(images, 20):
        miner.update(batch)
    first, deep = miner.results()
    for one, layer, chans in [(first, "first", [0, 1]), (deep, "block/deep", None)]:
        alone = max_activating_patches(model, layer, images, channels=chans, k=3)
        np.testing.assert_array_equal(one.indices, alone.indices)
        np.testing.assert_array_equal(one.patches, alone.patches)
    miner.reset()
    with pytest.raises(ValueError, match="k=3 is larger than the 0 images"):
        miner.results()


def test_bad_input_raises_clear_errors(model, images):
    with pytest.raises(
        ValueError,
        match=r"The data images have shape \(\d+, 20, 20, 3\); model 'small' expects \(N, 22, 21, 3\)",
    ):
        max_activating_patches(model, "first", np.zeros((4, 20, 20, 3), np.float32), k=2)
    with pytest.raises(ValueError, match=r"k=50 is larger than the 45 images in the data"):
        max_activating_patches(model, "first", images, k=50)
    with pytest.raises(ValueError, match=r"k=50 is larger than the 45 images in the data"):
        max_activating_patches(model, "first", (img for img in images), k=50)
    with pytest.raises(
        ValueError, match=r"Channel index 6 is out of range: layer 'first' has 6 channels \(0..5\)"
    ):
        max_activating_patches(model, "first", images, channels=[0, 6])
    with pytest.raises(ValueError, match=r"'gap' \(GlobalAveragePooling2D\) has no spatial output"):
        max_activating_patches(model, "gap", images)
    with pytest.raises(ValueError, match=r"of layer 'head'.*has no spatial output"):
        max_activating_patches(model, "head", images)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        max_activating_patches(model, "first", images, k=0)


def test_variable_size_model_takes_the_size_of_the_data():
    i = keras.Input((None, None, 1))
    model = keras.Model(i, L.Conv2D(2, 3, strides=2, padding="same", name="c")(i))
    data = np.random.default_rng(1).random((6, 9, 12, 1), dtype=np.float32)
    top = max_activating_patches(model, "c", data, k=2)
    assert top.receptive_field.input_size == (9, 12) and top.patches.shape == (2, 2, 3, 3, 1)


# -- model.forward_until ---------------------------------------------------------------------


def test_forward_until_matches_the_full_forward_pass(model, images):
    x = images[:4]
    with capture_outputs(model, ["second", "block/deep", "gap"]) as cap:
        model(x, training=False)
    second, deep = forward_until(model, ["second", "block/deep"], x)
    np.testing.assert_allclose(second, cap["second"], rtol=1e-6)
    np.testing.assert_allclose(deep, cap["block/deep"], rtol=1e-6)
    (head_input,) = forward_until(model, ["head"], x, capture="input")
    np.testing.assert_allclose(head_input, cap["gap"], rtol=1e-6)  # dropout is off


def test_forward_until_traces_only_the_needed_layers(model):
    fn = tf.function(lambda x: forward_until(model, ["second"], x)[0])
    graph = fn.get_concrete_function(tf.TensorSpec((None, 22, 21, 3))).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("Conv2D") == 2 and "MatMul" not in ops and "Mean" not in ops
    full = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((None, 22, 21, 3))
    )
    full_ops = [op.type for op in full.graph.get_operations()]
    assert full_ops.count("Conv2D") == 3 and "MatMul" in full_ops


def test_forward_until_leaves_the_model_untouched(model, images):
    forward_until(model, ["first"], images[:2])
    with pytest.raises(ValueError):
        forward_until(model, ["second"], np.zeros((1, 5, 5, 3), np.float32))
    for layer in model.layers + model.get_layer("block").layers:
        assert "call" not in vars(layer), layer.name
    # Stopping mid-call leaves no inference state behind: dropout still works in training.
    x = images[:8]
    inference = model(x, training=False).numpy()
    np.testing.assert_allclose(model(x).numpy(), inference, rtol=1e-6)
    assert not np.allclose(model(x, training=True).numpy(), inference)
    with pytest.raises(ValueError, match="capture must be 'output' or 'input'"):
        forward_until(model, ["first"], x, capture="both")


@pytest.mark.parametrize("channels", [[1, 2, 3], [3, 0, 2], [2], [0, 1, 2, 3]])
def test_chosen_channels_equal_the_same_channels_of_all(model, images, channels):
    """A run of channels is sliced, any other choice gathered: both give the rows of the
    all-channel result (values, images, peaks and patches)."""
    every = max_activating_patches(model, "second", images, k=4, batch_size=8)
    chosen = max_activating_patches(model, "second", images, channels, k=4, batch_size=8)
    assert chosen.channels == channels
    for name in ("values", "indices", "positions", "patches"):
        np.testing.assert_array_equal(getattr(chosen, name), getattr(every, name)[channels])


def test_a_field_wider_than_the_image_is_cut_to_the_band_that_holds_image_pixels():
    # Three 5x5 convolutions of stride 2: a 29-px field on 12-px images (as DenseNet121's
    # last stage, 2071 px, on 64-224 px images). The stored patch is the part of the window
    # where any unit can meet image pixels, not the padding around it.
    from keras_cnnvis.patches import window_band
    from keras_cnnvis.rendering.patches import patch_grid, seen_mask

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(4, 5, strides=2, padding="same", activation="relu")(inputs)
    x = L.Conv2D(4, 5, strides=2, padding="same", activation="relu")(x)
    x = L.Conv2D(4, 5, strides=2, padding="same", name="deep")(x)
    model = keras.Model(inputs, x)
    images = np.random.default_rng(0).random((10, 12, 12, 3)).astype(np.float32)
    top = max_activating_patches(model, "deep", images, k=3, pad_value=0.25)
    rf = top.receptive_field
    (lo_r, hi_r), (lo_c, hi_c) = window_band(rf)
    assert rf.size == (29, 29) and rf.output_shape[:2] == (2, 2)
    assert top.patches.shape == (4, 3, hi_r - lo_r, hi_c - lo_c, 3)
    assert hi_r - lo_r < 29 and hi_r - lo_r <= 12 + (2 - 1) * rf.jump[0]
    # Every pixel any unit sees lies in the band of its window.
    for r, c in np.ndindex(2, 2):
        top_r, left_c, _, _ = rf.window(r, c)
        t, l, b, rr = rf.box(r, c)
        assert (
            lo_r <= t - top_r and b - top_r <= hi_r and lo_c <= l - left_c and rr - left_c <= hi_c
        )
    # Each patch is the full-window patch cut to the band: nothing seen is lost, the unit
    # stays at the same place in every tile.
    for ch, slot in np.ndindex(4, 3):
        r, c = top.positions[ch, slot]
        full = reference_patch(images[top.indices[ch, slot]], rf, r, c, 0.25)
        np.testing.assert_array_equal(top.patches[ch, slot], full[lo_r:hi_r, lo_c:hi_c])
        # Pasting the seen pixels into an empty image gives the unit's value back.
        (image_rows, image_cols), (patch_rows, patch_cols) = seen_slices(rf, r, c)
        canvas = np.zeros((1, 12, 12, 3), np.float32)
        canvas[0, image_rows, image_cols] = top.patches[ch, slot, patch_rows, patch_cols]
        value = float(model(canvas, training=False)[0, r, c, top.channels[ch]])
        np.testing.assert_allclose(value, top.values[ch, slot], rtol=1e-5, atol=1e-6)
    assert seen_mask(top).shape == top.patches.shape[:4]
    grid, geometry = patch_grid(top, pad=1)
    assert geometry["tile"][0] % (hi_r - lo_r) == 0  # tiles of the band, enlarged
