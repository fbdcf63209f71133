"""RobustnessCallback in a real fit: exact tags and steps, scalars and records equal to independent
calls of the core on the same seeded subset, the mCE against the first record by hand, the
examples against the corruptions, one compiled pass per fit, 0-255 data, binary heads, and what
CNNVisCallback does with the monitor.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from callback_helpers import EpochsSeen
from eventfiles import read_run
from keras_cnnvis import inputs
from keras_cnnvis.callbacks import CNNVisCallback, RobustnessCallback
from keras_cnnvis.callbacks.robustness import epsilon_tag, infer_value_range
from keras_cnnvis.rendering import image
from keras_cnnvis.rendering.robustness import render_heatmap
from keras_cnnvis.robustness import CORRUPTIONS, adversarial_accuracy, corrupt, corruption_accuracy

L = keras.layers
NAMES = ["red", "green", "blue"]
LIGHT = dict(corruptions=["gaussian_noise", "contrast"], severities=[1, 3, 5], pgd_steps=3)


def bright_channel_data(n=90, size=16, seed=1):
    """The class is the bright colour channel (learned in a few epochs)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.random((n, size, size, 3), dtype=np.float32) * 0.4
    x[np.arange(n), :, :, y] += 0.5
    return x, y


def colour_model(units=3, activation="softmax", rescale=False):
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    x = L.Rescaling(1 / 255)(i) if rescale else i
    x = L.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(i, L.Dense(units, activation=activation, name="out")(x), name="colours")
    loss = "sparse_categorical_crossentropy" if units > 1 else "binary_crossentropy"
    model.compile(keras.optimizers.Adam(0.05), loss)
    return model


def steps(run, tag):
    return [r.step for r in run[tag]]


def test_real_fit_logs_the_tables_the_core_computes(tmp_path):
    x, y = bright_channel_data()
    model = colour_model()
    cb = RobustnessCallback(
        str(tmp_path),
        (x, y),
        n_examples=60,
        n_adversarial=12,
        n_probes=3,
        class_names=NAMES,
        every_n_epochs=2,
        on_error="raise",
        **LIGHT,
    )
    model.fit(x, y, epochs=4, batch_size=15, verbose=0, callbacks=[cb])
    assert os.listdir(tmp_path) == ["cnnvis"]
    run = read_run(str(tmp_path / "cnnvis"))
    scalars = {
        "robustness/clean_accuracy",
        "robustness/corrupted_accuracy",
        "robustness/accuracy/gaussian_noise",
        "robustness/accuracy/contrast",
        "robustness/mce",
        "robustness/pgd_accuracy/eps_2_255",
        "robustness/pgd_accuracy/eps_8_255",
    }
    records = {"robustness/heatmap", "json/robustness/heatmap"}
    records |= {"robustness/examples", "json/robustness/examples"}
    assert set(run) == scalars | records
    for tag in run:
        assert steps(run, tag) == [0, 2, 4], tag
    # The subset: 60 class-balanced images, seeded.
    picked = inputs.balanced_indices(y, 60, seed=0)
    np.testing.assert_array_equal(cb.x, x[picked])
    assert np.bincount(cb.y).tolist() == [20, 20, 20]
    # The last record against independent calls of the core on the trained model.
    table = corruption_accuracy(model, cb.x, cb.y, LIGHT["corruptions"], LIGHT["severities"])
    last = run["json/robustness/heatmap"][-1].value
    assert last["corruptions"] == ["gaussian_noise", "contrast"] and last["severities"] == [1, 3, 5]
    np.testing.assert_allclose(last["accuracy"], table.accuracy)
    assert last["clean"] == table.clean and last["count"] == 60
    assert run["robustness/clean_accuracy"][-1].value == pytest.approx(table.clean)
    assert run["robustness/corrupted_accuracy"][-1].value == pytest.approx(table.accuracy.mean())
    for name, row in zip(table.corruptions, table.accuracy):
        assert run[f"robustness/accuracy/{name}"][-1].value == pytest.approx(row.mean())
    first = run["json/robustness/heatmap"][0].value
    assert first["clean"] < 0.6 < table.clean  # it learned
    # Plain mCE against the first record, by hand.
    e_first, e_last = 1 - np.array(first["accuracy"]), 1 - table.accuracy
    mce = np.mean(e_last.sum(axis=1) / e_first.sum(axis=1))
    assert last["mce"] == pytest.approx(mce) and last["baseline_step"] == 0
    assert run["robustness/mce"][-1].value == pytest.approx(mce)
    assert run["robustness/mce"][0].value == pytest.approx(1.0) and mce < 1
    # PGD on the 12 class-balanced images of the subset.
    idx = inputs.balanced_indices(cb.y, 12, seed=0)
    pgd = adversarial_accuracy(model, cb.x[idx], cb.y[idx], [0, 2 / 255, 8 / 255], steps=3)
    np.testing.assert_allclose(last["adversarial"]["accuracy"], pgd)
    assert last["adversarial"]["count"] == 12 and last["adversarial"]["steps"] == 3
    assert run["robustness/pgd_accuracy/eps_8_255"][-1].value == pytest.approx(pgd[2])
    # The heatmap image is the renderer's picture of the table.
    title = f"step 4: clean {table.clean:.3f}, corrupted {table.mean:.3f} (n=60)"
    expected = render_heatmap(
        table.accuracy, table.corruptions, table.severities, table.clean, title
    )
    np.testing.assert_array_equal(
        run["robustness/heatmap"][-1].value[0][..., ::-1], image.to_uint8(expected)
    )


def test_examples_are_the_probes_corrupted_with_the_models_predictions(tmp_path):
    x, y = bright_channel_data()
    model = colour_model()
    cb = RobustnessCallback(
        str(tmp_path), (x, y), n_examples=30, epsilons=(), n_probes=3, on_error="raise", **LIGHT
    )
    model.fit(x, y, epochs=2, batch_size=15, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert not [t for t in run if "pgd" in t]  # epsilons=() turns the attack off
    assert run["json/robustness/heatmap"][-1].value["adversarial"] is None
    meta = run["json/robustness/examples"][-1].value
    tiles = run["robustness/examples"][-1].value
    probes = cb.x[inputs.balanced_indices(cb.y, 3, sort=False)]
    assert meta["labels"] == [0, 1, 2] and meta["n_probes"] == 3 and meta["class_names"] is None
    expected = [probes] + [
        corrupt(probes, name, s, seed=[0, CORRUPTIONS.index(name), s])
        for name in LIGHT["corruptions"]
        for s in LIGHT["severities"]
    ]
    expected = np.concatenate(expected)
    assert len(tiles) == 3 * 7
    for got, want in zip(tiles, expected):
        np.testing.assert_array_equal(got[..., ::-1], image.to_uint8(want))
    outputs = np.asarray(model(expected, training=False))
    assert meta["predictions"] == outputs.argmax(-1).reshape(7, 3).tolist()
    np.testing.assert_allclose(meta["scores"], outputs.max(-1).reshape(7, 3), atol=1e-4)
    # Fixed pictures: every record shows the same tiles.
    np.testing.assert_array_equal(run["robustness/examples"][0].value[5], tiles[5])


def test_fit_twice_keeps_the_first_record_and_one_compiled_pass(tmp_path):
    x, y = bright_channel_data()
    model = colour_model()
    cb = RobustnessCallback(
        str(tmp_path),
        (x, y),
        n_examples=30,
        epsilons=(),
        n_probes=0,
        log_initial=False,
        on_error="raise",
        **LIGHT,
    )
    model.fit(x, y, epochs=1, batch_size=15, verbose=0, callbacks=[cb])
    traces = cb._predictor.forward.function.experimental_get_tracing_count()
    model.fit(x, y, initial_epoch=1, epochs=3, batch_size=15, verbose=0, callbacks=[cb])
    assert cb._predictor.forward.function.experimental_get_tracing_count() == traces == 1
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "json/robustness/heatmap") == [1, 2, 3]
    assert {r.value["baseline_step"] for r in run["json/robustness/heatmap"]} == {1}
    assert "robustness/examples" not in run  # n_probes=0


def test_0_255_images_give_the_figures_of_0_1_images(tmp_path):
    x, y = bright_channel_data()
    assert infer_value_range(x) == (0.0, 1.0) and infer_value_range(x * 255) == (0.0, 255.0)
    with pytest.raises(ValueError, match="pass value_range"):
        infer_value_range(x - 1)
    unit, byte = colour_model(), colour_model(rescale=True)
    results = []
    for model, data, where in ((unit, x, "a"), (byte, x * 255, "b")):
        cb = RobustnessCallback(
            str(tmp_path / where),
            (data, y),
            n_examples=30,
            n_adversarial=6,
            n_probes=2,
            log_initial=False,
            on_error="raise",
            **LIGHT,
        )
        model.fit(
            x if model is unit else x * 255, y, epochs=1, batch_size=15, verbose=0, callbacks=[cb]
        )
        results.append(
            read_run(str(tmp_path / where / "cnnvis"))["json/robustness/heatmap"][0].value
        )
    a, b = results
    np.testing.assert_allclose(a["accuracy"], b["accuracy"])
    np.testing.assert_allclose(a["adversarial"]["accuracy"], b["adversarial"]["accuracy"])


@pytest.mark.parametrize("activation", ["sigmoid", None])
def test_a_one_unit_binary_head_is_attacked_as_two_classes(tmp_path, activation):
    x, y = bright_channel_data()
    keep = y < 2  # red (class 0) against green (class 1)
    x, y = x[keep], y[keep]
    model = colour_model(units=1, activation=activation)
    if activation is None:
        model.compile(
            keras.optimizers.Adam(0.05), keras.losses.BinaryCrossentropy(from_logits=True)
        )
    cb = RobustnessCallback(
        str(tmp_path),
        (x, y),
        n_examples=30,
        n_adversarial=10,
        epsilons=[0.3],
        n_probes=2,
        log_initial=False,
        on_error="raise",
        **LIGHT,
    )
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[cb])
    last = read_run(str(tmp_path / "cnnvis"))["json/robustness/heatmap"][-1].value
    out = np.asarray(model(cb.x, training=False))[:, 0]
    predicted = (out > (0.5 if activation == "sigmoid" else 0.0)).astype(int)
    assert last["clean"] == pytest.approx(np.mean(predicted == cb.y)) and last["clean"] > 0.9
    clean_pgd, strong = last["adversarial"]["accuracy"]
    assert clean_pgd > 0.9 and strong < 0.5  # 0.3 per pixel swaps the bright channel


def test_misconfiguration_is_reported_before_the_first_epoch(tmp_path):
    x, y = bright_channel_data()
    with pytest.raises(ValueError, match="Unknown corruption 'blurr'"):
        RobustnessCallback(str(tmp_path), (x, y), corruptions=["blurr"])
    with pytest.raises(ValueError, match="'benchmark' or 'all'"):
        RobustnessCallback(str(tmp_path), (x, y), corruptions="most")
    with pytest.raises(ValueError, match="severity must be from 1 to 5"):
        RobustnessCallback(str(tmp_path), (x, y), severities=[6])
    with pytest.raises(ValueError, match=r"epsilons must be pixel changes in \[0, 1\]"):
        RobustnessCallback(str(tmp_path), (x, y), epsilons=[8])
    with pytest.raises(ValueError, match="n_examples must be an integer >= 1"):
        RobustnessCallback(str(tmp_path), (x, y), n_examples=0)
    with pytest.raises(ValueError, match="validation_data must be"):
        RobustnessCallback(str(tmp_path), x)
    with pytest.raises(ValueError, match="has no labels"):
        RobustnessCallback(str(tmp_path), (x,))
    # A tf.data.Dataset of (x, y) batches gives the same subset as the arrays.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    np.testing.assert_array_equal(
        RobustnessCallback(str(tmp_path), dataset, n_examples=30).x,
        RobustnessCallback(str(tmp_path), (x, y), n_examples=30).x,
    )
    assert len(RobustnessCallback(str(tmp_path), (x, y), corruptions="all").corruptions) == 19
    for bad, match in (
        (dict(validation_data=(x, y + 1)), "Class index 3 is out of range"),
        (dict(validation_data=(x, y), class_names=["a", "b"]), "2 class names"),
        (dict(validation_data=(x[:, :8, :8], y)), "expects"),
    ):
        seen = EpochsSeen()
        cb = RobustnessCallback(str(tmp_path), **bad, n_examples=12, on_error="raise", **LIGHT)
        with pytest.raises(ValueError, match=match):
            colour_model().fit(x, y, epochs=1, verbose=0, callbacks=[seen, cb])
        assert seen.begun == []


def test_cnnvis_callback_runs_the_monitor_and_skips_heads_without_classes(tmp_path):
    x, y = bright_channel_data()
    options = {"robustness": dict(n_examples=30, n_adversarial=6, **LIGHT)}
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(x, y),
        class_names=NAMES,
        include=("robustness",),
        expensive_every=2,
        options=options,
        on_error="raise",
        budget=None,
    )
    colour_model().fit(x, y, epochs=3, batch_size=15, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert steps(run, "json/robustness/heatmap") == [3]  # every 2 x 2 epochs, and the end
    examples = run["json/robustness/examples"][-1].value
    assert examples["class_names"] == NAMES and examples["n_probes"] == 4  # its probes
    assert run["robustness/pgd_accuracy/" + epsilon_tag(2 / 255)][-1].step == 3
    # A regression head predicts no classes: skipped with the reason, the fit runs.
    i = keras.Input((16, 16, 3))
    h = L.GlobalAveragePooling2D()(L.Conv2D(2, 3)(i))
    regression = keras.Model(i, L.Dense(1)(h))
    regression.compile("adam", "mse")
    values = x.mean(axis=(1, 2, 3))
    cb = CNNVisCallback(
        str(tmp_path / "r"),
        validation_data=(x, values),
        include=("robustness",),
        on_error="raise",
        budget=None,
    )
    with pytest.warns(
        UserWarning, match="'robustness' monitor is skipped: the model is a regression"
    ):
        regression.fit(x, values, epochs=1, verbose=0, callbacks=[cb])
    assert cb.not_applicable["robustness"].startswith("the model is a regression head")


def test_cnnvis_callback_skips_pixels_the_corruptions_cannot_read(tmp_path):
    x, y = bright_channel_data()
    symmetric = 2 * x - 1  # [-1, 1]: no value range to infer
    cb = CNNVisCallback(
        str(tmp_path),
        validation_data=(symmetric, y),
        include=("robustness", "confusion"),
        on_error="raise",
        budget=None,
    )
    with pytest.warns(UserWarning, match=r"range over \[-0.99\d*, 0.79\d*\], neither \[0, 1\] nor"):
        colour_model().fit(symmetric, y, epochs=1, verbose=0, callbacks=[cb])
    assert cb.names == ["confusion"]  # the other monitors run
    # Given the range and the mapping, the callback itself measures it.
    cb = RobustnessCallback(
        str(tmp_path / "own"),
        (symmetric, y),
        value_range=(-1, 1),
        n_examples=12,
        n_probes=0,
        epsilons=(),
        on_error="raise",
        **LIGHT,
    )
    colour_model().fit(symmetric, y, epochs=1, verbose=0, callbacks=[cb])
    assert len(read_run(str(tmp_path / "own" / "cnnvis"))["json/robustness/heatmap"]) == 2
