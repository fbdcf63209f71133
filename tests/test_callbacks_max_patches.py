"""MaxActivatingPatchesCallback in a real fit: the logged grids and records equal the core
functions' results on the trained model; misconfiguration fails before the first epoch.
"""

import os

import numpy as np
import pytest

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis.rendering import image
from keras_cnnvis.callbacks import MaxActivatingPatchesCallback
from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.patches import max_activating_patches
from keras_cnnvis.rendering.patches import patch_grid
from patch_helpers import compiled_small, random_images


@pytest.fixture(scope="module")
def images():
    return random_images()


def test_callback_logs_grids_and_records_in_a_real_fit(tmp_path, images):

    model = compiled_small()
    labels = np.arange(45) % 3
    cb = MaxActivatingPatchesCallback(
        str(tmp_path), images, layers=["first", "block/deep"], channels=3, k=4, on_error="raise"
    )
    model.fit(images, labels, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert os.listdir(tmp_path) == ["cnnvis"]
    run = read_run(str(tmp_path / "cnnvis"))
    layers = ["first", "block/deep"]
    assert set(run) == {f"patches/{l}" for l in layers} | {f"json/patches/{l}" for l in layers}
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1, 2], tag
    for layer in layers:
        meta = run[f"json/patches/{layer}"][-1].value
        now = max_activating_patches(model, layer, images, channels=[0, 1, 2], k=4, pad_value=0.5)
        assert meta["layer"] == layer and meta["k"] == 4 and meta["channels"] == [0, 1, 2]
        assert meta["indices"] == now.indices.tolist() and meta["n_images"] == 45
        assert meta["positions"] == now.positions.tolist() and meta["boxes"] == now.boxes.tolist()
        np.testing.assert_allclose(meta["values"], now.values, rtol=1e-5)
        assert meta["receptive_field"] == now.receptive_field.as_dict()
        assert meta["view"] is None
        # Both fields (3x3, 13x13) are small next to the 22x21 images: tiles in context.
        assert meta["tile_view"] == "context"
        assert meta["context"]["origins"] == now.context_origins.tolist()
        grid, geometry = patch_grid(now)
        assert meta["grid"] == geometry and geometry["rows"] == 3 and geometry["cols"] == 4
        logged = run[f"patches/{layer}"][-1].value[0]
        np.testing.assert_array_equal(logged[..., ::-1], image.to_uint8(grid))
        # Training changed which images excite the units, or how much.
        first = run[f"json/patches/{layer}"][0].value
        assert first["values"] != meta["values"]
    # 'first': 12x12 regions (4 x 3 px) at x7 -> 84 px; rows of 4 tiles + 1 px pads.
    meta = run["json/patches/first"][-1].value
    assert meta["context"]["size"] == [12, 12] and meta["context"]["zoom"] == 7.0
    assert meta["context"]["image"] == [22, 21] and meta["grid"]["tile"] == [84, 84]
    assert run["patches/first"][-1].value[0].shape[:2] == (3 * 85 + 1, 4 * 85 + 1)
    # 'block/deep': its 22x21 image at x4.
    assert run["patches/block/deep"][-1].value[0].shape[:2] == (3 * 89 + 1, 4 * 85 + 1)


def test_callback_without_context_logs_the_patches_alone(tmp_path, images):

    model = compiled_small()
    cb = MaxActivatingPatchesCallback(
        str(tmp_path), images, layers="first", channels=2, k=3, context=False, on_error="raise"
    )
    model.fit(images, np.zeros(45), epochs=1, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    meta = run["json/patches/first"][-1].value
    assert meta["tile_view"] == "patch" and meta["context"] is None
    assert meta["window"] == {"offset": [0, 0], "size": [3, 3]}  # a field within the image
    # 3x3 patches scaled x16 -> 48 px.
    assert meta["grid"]["tile"] == [48, 48]
    assert run["patches/first"][-1].value[0].shape[:2] == (2 * 49 + 1, 3 * 49 + 1)


def test_callback_with_guided_backprop_puts_a_view_beside_each_patch(tmp_path, shapes_small):

    model = build_demo_model((64, 64, 3), 5, seed=2)
    x, y = shapes_small[0][:64], shapes_small[1][:64]
    cb = MaxActivatingPatchesCallback(
        str(tmp_path),
        (x, y),
        layers="conv2",
        channels=[1, 4],
        k=3,
        view="guided_backprop",
        log_initial=False,
        on_error="raise",
    )
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    meta = run["json/patches/conv2"][0].value
    assert meta["view"] == "guided_backprop" and meta["channels"] == [1, 4]
    # conv2's 10x10 field is small on 64x64 images: 40x40 regions at x2.
    assert meta["tile_view"] == "context" and meta["context"]["size"] == [40, 40]
    assert meta["grid"]["cols"] == 6 and meta["grid"]["tile"] == [80, 80]
    grid = run["patches/conv2"][0].value[0].astype(np.float32)
    assert grid.shape[:2] == (2 * 81 + 1, 6 * 81 + 1)
    # The view tile (column 1) is neutral grey outside the unit's window and varies inside.
    rf = {"size": 10, "start": -4, "jump": 2}
    assert meta["receptive_field"] == {k: [v, v] for k, v in rf.items()}
    (row, col), (oy, ox) = meta["positions"][0][0], meta["context"]["origins"][0][0]
    top, left = -4 + 2 * row - oy, -4 + 2 * col - ox  # the window in the region
    view = grid[1:81, 1 + 81 : 81 + 81]
    inside = np.zeros((80, 80), bool)
    inside[max(2 * top, 0) : 2 * (top + 10), max(2 * left, 0) : 2 * (left + 10)] = True
    assert np.abs(view[inside] - 128).max() > 40
    frame = np.zeros((80, 80), bool)  # the frame: up to 3 px around the window
    frame[max(2 * top - 3, 0) : 2 * (top + 10) + 3, max(2 * left - 3, 0) : 2 * (left + 10) + 3] = (
        True
    )
    assert np.abs(view[~frame] - 128).max() <= 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": [0, 9]}, r"Channel index 9 is out of range: layer 'first' has 6 channels"),
        ({"layers": ["gap"]}, r"'gap' \(GlobalAveragePooling2D\) has no spatial output"),
        ({"layers": ["nope"]}, r"No layer named 'nope'"),
        ({"k": 46}, r"k=46 is larger than the 45 images in data"),
        (
            {"data": np.zeros((5, 21, 22, 3), np.float32)},
            r"The data images have shape \(\d+, 21, 22, 3\); model 'small' expects \(N, 22, 21, 3\)",
        ),
        ({"view": "deconvnet"}, r"ReLU"),
    ],
)
def test_callback_misconfiguration_raises_before_the_first_epoch(tmp_path, images, kwargs, message):

    model = compiled_small()
    args = {"data": images, "layers": ["first"], **kwargs}
    epochs = EpochsSeen()
    with pytest.raises(ValueError, match=message):
        model.fit(
            images,
            np.zeros(45),
            epochs=2,
            verbose=0,
            callbacks=[epochs, MaxActivatingPatchesCallback(str(tmp_path), **args)],
        )
    assert epochs.begun == []
    assert not (tmp_path / "cnnvis").exists()


def test_callback_constructor_validation(images):

    with pytest.raises(ValueError, match="one-shot iterator"):
        MaxActivatingPatchesCallback("x", (img for img in images))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        MaxActivatingPatchesCallback("x", images, k=0)
    with pytest.raises(ValueError, match="channels must be >= 1"):
        MaxActivatingPatchesCallback("x", images, channels=0)
    with pytest.raises(ValueError, match="view must be None or one of"):
        MaxActivatingPatchesCallback("x", images, view="saliency")
    with pytest.raises(ValueError, match="needs data"):
        MaxActivatingPatchesCallback("x", None)
    with pytest.raises(ValueError, match="context must be 'auto', True or False"):
        MaxActivatingPatchesCallback("x", images, context="yes")
