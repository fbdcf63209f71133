"""ClassVisualizationCallback in a real fit: tags, steps, one image per class, the payload,
a compiled step that is traced once across epochs, and errors before the first epoch."""

import keras
import numpy as np
import pytest

from eventfiles import read_run
from synthesis_helpers import tiny_cnn
from keras_cnnvis.callbacks import ClassVisualizationCallback


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((24, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, 24)


def compiled_tiny():
    model = tiny_cnn(16, 3)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_fit_logs_one_image_per_class_each_time(tmp_path, data):
    model = compiled_tiny()
    cb = ClassVisualizationCallback(
        str(tmp_path), class_names=["a", "b", "c"], steps=4, every_n_epochs=1, on_error="raise"
    )
    model.fit(*data, epochs=2, batch_size=12, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert set(run) == {"synthesis/classes", "json/synthesis/classes"}
    assert [r.step for r in run["synthesis/classes"]] == [0, 1, 2]
    assert [r.step for r in run["json/synthesis/classes"]] == [0, 1, 2]
    images = run["synthesis/classes"][-1].value
    assert len(images) == 3 and all(img.shape == (16, 16, 3) for img in images)
    meta = run["json/synthesis/classes"][-1].value
    assert meta["classes"] == [0, 1, 2] and meta["class_names"] == ["a", "b", "c"]
    assert meta["steps"] == 4 and meta["size"] == [16, 16]
    # The logged probabilities are the live model's on the logged pictures (PNG is 8-bit).
    pics = np.stack([img[..., ::-1] for img in images]).astype(np.float32) / 255
    probs = model.predict(pics, verbose=0)
    np.testing.assert_allclose(meta["probability"], probs[np.arange(3), [0, 1, 2]], atol=0.02)
    # One compiled step reused at every epoch; the images follow the changing weights.
    assert cb._renderer.step_fn.experimental_get_tracing_count() == 1
    assert not np.array_equal(run["synthesis/classes"][0].value[0], images[0])


def test_every_n_epochs_and_chosen_classes(tmp_path, data):
    model = compiled_tiny()
    cb = ClassVisualizationCallback(
        str(tmp_path), classes=[2], steps=2, every_n_epochs=2, log_initial=False, on_error="raise"
    )
    model.fit(*data, epochs=4, verbose=0, callbacks=[cb])
    run = read_run(str(tmp_path / "cnnvis"))
    assert [r.step for r in run["synthesis/classes"]] == [2, 4]
    assert len(run["synthesis/classes"][0].value) == 1
    assert run["json/synthesis/classes"][0].value["class_names"] == ["class 2"]


def test_misconfiguration_is_reported_before_the_first_epoch(tmp_path, data):
    model = compiled_tiny()
    cb = ClassVisualizationCallback(str(tmp_path), classes=[3], on_error="raise")
    seen = []
    marker = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
    with pytest.raises(ValueError, match="Class index 3 is out of range"):
        model.fit(*data, epochs=1, verbose=0, callbacks=[cb, marker])
    assert seen == []
    with pytest.raises(ValueError, match="steps"):
        ClassVisualizationCallback(str(tmp_path), steps=0)
