"""ClassPredictor: the corrupted images kept between calls give the tables of a fresh call bit
for bit (under the byte cap, above it for the pairs that do not fit, and after the images
change), a stream of chunks is classified in the batches of one array, and a label check
kept from one call does not hide a bad label in the next.
"""

import numpy as np
import pytest

from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.robustness import ClassPredictor, adversarial_accuracy, corruption_accuracy
from keras_cnnvis.robustness.predictor import corrupted_chunks
from robustness_models import shapes_data

NAMES = ("gaussian_noise", "defocus_blur", "contrast")
LEVELS = (1, 3, 5)
PAIRS = len(NAMES) * len(LEVELS)


@pytest.fixture(scope="module")
def setup():
    """The random-weight demo CNN at 16x16 with labels set to its own clean predictions
    (two classes), so the clean accuracy is 1 and every corruption that changes a
    prediction shows in the table."""
    model = build_demo_model((16, 16, 3), 5, seed=0)
    _, (x, _, _) = shapes_data(n=60, n_val=24)
    y = ClassPredictor(model)(x)
    return model, x, y


def table(model, x, y, predictor=None, batch_size=8):
    return corruption_accuracy(
        model, x, y, NAMES, LEVELS, batch_size=batch_size, seed=3, predictor=predictor
    ).accuracy


def test_kept_corruptions_give_the_fresh_tables_bit_for_bit(setup):
    model, x, y = setup
    fresh = table(model, x, y)
    assert fresh.min() < 1 and len(np.unique(fresh)) > 2  # corruptions change predictions
    predictor = ClassPredictor(model)
    first = table(model, x, y, predictor)
    assert predictor.cached_bytes == (PAIRS + 1) * x.nbytes  # the images and 9 pairs
    second = table(model, x, y, predictor)
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(second, fresh)
    # The second call read the kept images: a pair replaced by the clean images now scores
    # the clean accuracy (1.0).
    predictor._corrupted[("gaussian_noise", 5)][...] = x
    assert table(model, x, y, predictor)[0, 2] == 1.0 != fresh[0, 2]


def test_a_kept_pair_is_the_seeded_corruption_of_the_chunks(setup):
    """The kept images are the chunks `corruption_accuracy` seeds by their start: another
    chunk size or seed is another table (and drops what was kept)."""
    model, x, y = setup
    predictor = ClassPredictor(model)
    table(model, x, y, predictor)
    made = np.concatenate(list(corrupted_chunks(x, "gaussian_noise", 3, 8, 3)))
    np.testing.assert_array_equal(predictor._corrupted[("gaussian_noise", 3)], made)
    other = table(model, x, y, predictor, batch_size=5)
    np.testing.assert_array_equal(other, table(model, x, y, batch_size=5))
    made = np.concatenate(list(corrupted_chunks(x, "gaussian_noise", 3, 5, 3)))
    np.testing.assert_array_equal(predictor._corrupted[("gaussian_noise", 3)], made)


def test_above_the_cap_the_pairs_that_do_not_fit_are_made_again(setup):
    model, x, y = setup
    fresh = table(model, x, y)
    capped = ClassPredictor(model, cache_bytes=3 * x.nbytes)  # the images and two pairs
    for _ in range(2):
        np.testing.assert_array_equal(table(model, x, y, capped), fresh)
        assert capped.cached_bytes == 3 * x.nbytes
    assert sorted(capped._corrupted) == [("gaussian_noise", 1), ("gaussian_noise", 3)]
    none = ClassPredictor(model, cache_bytes=0)
    np.testing.assert_array_equal(table(model, x, y, none), fresh)
    assert none.cached_bytes == 0
    with pytest.raises(ValueError, match="cache_bytes must be an integer >= 0"):
        ClassPredictor(model, cache_bytes=-1)


def test_other_images_replace_what_was_kept(setup):
    model, x, y = setup
    predictor = ClassPredictor(model)
    table(model, x, y, predictor)
    flipped = x[:, ::-1].copy()
    labels = ClassPredictor(model)(flipped)
    np.testing.assert_array_equal(
        table(model, flipped, labels, predictor), table(model, flipped, labels)
    )
    assert predictor.cached_bytes == (PAIRS + 1) * x.nbytes  # of the new images only
    np.testing.assert_array_equal(predictor._images, flipped)
    # One pixel changed is other images too.
    nudged = x.copy()
    nudged[0, 0, 0, 0] += 0.25
    np.testing.assert_array_equal(table(model, nudged, y, predictor), table(model, nudged, y))


def test_a_stream_is_classified_in_the_batches_of_one_array(setup):
    model, x, _ = setup
    predictor = ClassPredictor(model, batch_size=5)
    whole = predictor.outputs(x)
    chunks = [x[:3], x[3:4], x[4:15], x[15:]]
    np.testing.assert_array_equal(predictor.stream(chunks), predictor(x))
    np.testing.assert_array_equal(predictor.stream([x]), predictor(x))
    # The batches of 5 are those of the array: the same outputs as one call per batch.
    by_batch = np.concatenate([predictor.outputs(x[s : s + 5]) for s in range(0, len(x), 5)])
    np.testing.assert_array_equal(whole, by_batch)


def test_a_kept_label_check_does_not_hide_a_bad_label(setup):
    model, x, y = setup
    predictor = ClassPredictor(model)
    kwargs = dict(epsilons=[0, 2 / 255], steps=1, predictor=predictor)
    first = adversarial_accuracy(model, x[:8], y[:8], **kwargs)
    np.testing.assert_array_equal(adversarial_accuracy(model, x[:8], y[:8], **kwargs), first)
    bad = y[:8].copy()
    bad[0] = 7
    with pytest.raises(ValueError, match="Class index 7 is out of range"):
        adversarial_accuracy(model, x[:8], bad, **kwargs)
