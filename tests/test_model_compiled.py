"""Forward batch sizes from a byte budget: an example's input plus its largest layer output,
from symbolic shapes or one traced example (free-size and subclassed models), and the
FeatureExtractor batches they give (same features as any other batch size).
"""

import keras
import numpy as np
import pytest

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.model import FeatureExtractor
from keras_cnnvis.model.compiled import (
    BATCH_BYTES,
    DEFAULT_BATCH,
    MAX_BATCH,
    batch_size_for,
    example_bytes,
)


def strided(shape=(16, 16, 3)) -> keras.Model:
    """conv_a (8 filters, 3x3, stride 2) -> conv_b (64, 3x3) -> GAP -> Dense(2): at 16x16 the
    largest output is conv_b's 8x8x64 = 4096 values, not 16x16x64."""
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(8, 3, strides=2, padding="same")
        self.wide = keras.layers.Conv2D(64, 3, padding="same")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.pool(self.wide(self.conv(x))))


def test_example_bytes_are_the_input_and_the_largest_output():
    # 16x16x3 input (768 values) + conv_b's 8x8x64 (4096), float32.
    assert example_bytes(strided()) == 4 * (768 + 4096)
    # The demo CNN: 64x64x3 input + conv1/bn1/relu1's 64x64x16.
    assert example_bytes(build_demo_model((64, 64, 3), 5)) == 4 * (64 * 64 * 3 + 64 * 64 * 16)


@pytest.mark.parametrize("build", [lambda: strided((None, None, 3)), Subclassed])
def test_free_size_and_subclassed_models_are_measured_on_one_traced_example(build):
    model = build()
    model(np.zeros((1, 16, 16, 3), np.float32))
    assert example_bytes(model, (16, 16, 3)) == 4 * (768 + 4096)
    assert example_bytes(model, (32, 32, 3)) == 4 * (32 * 32 * 3 + 16 * 16 * 64)
    assert example_bytes(model) is None  # no image shape to measure


def test_batch_size_for_fills_the_budget_up_to_the_limit():
    model = strided()
    per = 4 * (768 + 4096)
    assert batch_size_for(model, budget=10 * per) == 10
    assert batch_size_for(model, budget=10 * per - 1) == 9
    assert batch_size_for(model, budget=1) == 1  # never fewer than one
    assert batch_size_for(model) == MAX_BATCH == 256  # 96 MiB hold 5000 of these
    assert batch_size_for(model, limit=32) == 32
    assert batch_size_for(build_demo_model((64, 64, 3), 5)) == 256
    # A 224x224 image with a 112x112x64 map: 3.8 MB per example, 26 in 96 MiB.
    big = keras.Sequential(
        [keras.Input((224, 224, 3)), keras.layers.Conv2D(64, 7, strides=2, padding="same")]
    )
    assert batch_size_for(big) == BATCH_BYTES // (4 * (224 * 224 * 3 + 112 * 112 * 64)) == 26
    unknown = strided((None, None, 3))
    assert batch_size_for(unknown) == DEFAULT_BATCH == 64  # no image shape given


def test_a_feature_extractor_batches_by_the_budget_with_the_same_features():
    model = strided()
    x = np.random.default_rng(0).random((300, 16, 16, 3), dtype=np.float32)
    auto = FeatureExtractor(model, ["conv_a"])
    assert auto.batch_size is None and auto.batch_for(x.shape[1:]) == 256
    (feats,), out = auto(x)
    (small,), small_out = FeatureExtractor(model, ["conv_a"], batch_size=7)(x)
    np.testing.assert_allclose(feats, small, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, small_out, rtol=1e-6, atol=1e-6)
    assert FeatureExtractor(model, ["conv_a"], batch_size=7).batch_for(x.shape[1:]) == 7
