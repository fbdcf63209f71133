"""patches.context: which fields are small next to their image, the context window each gets
(hand-computed from the rule), and where each unit's window sits, centred then shifted inside.
"""

import keras
import numpy as np
import pytest

from keras_cnnvis.model.receptive_field import ReceptiveField, receptive_field
from keras_cnnvis.patches import context_origins, context_size, is_small

L = keras.layers


def field(size, image, jump=(1, 1), start=None) -> ReceptiveField:
    """A `ReceptiveField` with the given geometry (units on a jump grid, `"same"`-centred)."""
    start = tuple(-(s // 2) for s in size) if start is None else start
    out = tuple(-(-n // j) for n, j in zip(image, jump)) + (4,)
    return ReceptiveField("x", tuple(size), tuple(jump), start, tuple(image), out)


@pytest.mark.parametrize(
    "size, image, expected",
    [
        ((3, 3), (64, 64), (22, 22)),  # max(4 * 3, ceil(64 / 3)) = 22
        ((5, 5), (64, 64), (22, 22)),  # max(20, 22)
        ((10, 10), (64, 64), (40, 40)),  # 4 x field
        ((20, 20), (64, 64), (64, 64)),  # 80, clipped to the image
        ((23, 23), (32, 32), (32, 32)),  # under 24 px: small even on a small image
        ((40, 40), (64, 64), None),  # 40 >= max(24, 16): readable alone
        ((24, 24), (64, 64), None),  # the boundary: not smaller than 24 px
        ((50, 50), (224, 224), (200, 200)),  # under a quarter of 224 (56)
        ((56, 56), (224, 224), None),  # a quarter: not smaller
        ((3, 40), (64, 64), None),  # small on one axis only
        ((3, 5), (30, 90), (12, 30)),  # per axis: max(12, 10), max(20, 30)
        ((16, 16), (16, 16), None),  # the field already spans the image: nothing to add
    ],
)
def test_context_size_follows_the_rule(size, image, expected):
    rf = field(size, image)
    assert context_size(rf) == expected
    assert is_small(rf) == (expected is not None or size == image)
    assert context_size(rf, context=False) is None


def test_context_true_and_bad_values():
    large = field((40, 40), (64, 64))
    assert context_size(large, context=True) == (64, 64)  # max(160, 22), clipped
    for bad in ("yes", None, 1, "Auto"):
        with pytest.raises(ValueError, match="context must be 'auto', True or False"):
            context_size(large, context=bad)


def test_origins_centre_the_window_and_stay_inside_the_image():
    i = keras.Input((64, 64, 1))
    rf = receptive_field(keras.Model(i, L.Conv2D(1, 3, padding="same", name="c")(i)), "c")
    assert (rf.size, rf.start) == ((3, 3), (-1, -1))  # unit (i, j) sees rows i-1 .. i+1
    size = context_size(rf)
    units = np.array([[0, 0], [32, 32], [63, 63], [10, 50]])
    # top = window top + (3 - 22) // 2 = i - 1 - 10, kept in 0 .. 64 - 22 = 42
    np.testing.assert_array_equal(
        context_origins(rf, units, size), [[0, 0], [21, 21], [42, 42], [0, 39]]
    )
    # Every unit's seen box lies inside its region.
    for (r, c), (top, left) in zip(units, context_origins(rf, units, size)):
        t, l, b, rr = rf.box(int(r), int(c))
        assert top <= t and b <= top + size[0] and left <= l and rr <= left + size[1]


def test_a_real_model_gets_windows_from_its_own_fields():
    i = keras.Input((64, 48, 1))
    x = L.Conv2D(2, 3, padding="same", name="c1")(i)
    x = L.Conv2D(2, 3, strides=2, padding="same", name="c2")(x)
    x = L.Conv2D(2, 7, dilation_rate=4, padding="same", name="c3")(x)
    model = keras.Model(i, x)
    sizes = {n: receptive_field(model, n).size for n in ("c1", "c2", "c3")}
    assert sizes == {"c1": (3, 3), "c2": (5, 5), "c3": (53, 53)}
    assert context_size(receptive_field(model, "c1")) == (22, 16)  # ceil(64/3), ceil(48/3)
    assert context_size(receptive_field(model, "c2")) == (22, 20)  # max(20, 22), max(20, 16)
    assert context_size(receptive_field(model, "c3")) is None
