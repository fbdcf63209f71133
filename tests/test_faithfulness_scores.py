"""Several methods' maps at once: a dict of maps gives a dict of the single results, and
`faithfulness_scores` equals the separate calls with one clean pass and one set of MuFidelity
copies (forward passes counted on the fixed-weight linear model of test_faithfulness).
"""

import math

import numpy as np
import pytest

import test_faithfulness as linear_tests
from keras_cnnvis.attribution.faithfulness import (
    deletion_curve,
    faithfulness_scores,
    insertion_curve,
    mu_fidelity,
    random_reference,
)

linear = linear_tests.linear  # the fixture: (model, weights, call counter)
_images, _contributions = linear_tests._images, linear_tests._contributions


def _calls_of(counter, fn):
    before = counter.counts()
    out = fn()
    return counter.counts()[0] - before[0], out


def _same_curve(a, b):
    assert a.kind == b.kind and a.draws == b.draws
    np.testing.assert_array_equal(a.fractions, b.fractions)
    np.testing.assert_array_equal(a.curves, b.curves)
    np.testing.assert_array_equal(a.auc, b.auc)


def test_a_dict_of_maps_gives_a_dict_of_the_single_results(linear):
    model, w, counter = linear
    x = _images(3)
    maps = {"true": _contributions(w, x), "noise": _images(3, seed=9)[..., 0]}
    both = deletion_curve(model, x, maps, steps=4)
    assert list(both) == ["true", "noise"]
    for name, m in maps.items():
        _same_curve(both[name], deletion_curve(model, x, m, steps=4))
    calls, mus = _calls_of(
        counter, lambda: mu_fidelity(model, x, maps, grid_size=4, nb_samples=10, batch_size=4)
    )
    assert calls == math.ceil(3 / 4) + math.ceil(10 * 3 / 4)  # one set of drops for both
    for name, m in maps.items():
        one = mu_fidelity(model, x, m, grid_size=4, nb_samples=10, batch_size=4)
        np.testing.assert_array_equal(mus[name].correlation, one.correlation)
        np.testing.assert_array_equal(mus[name].sums, one.sums)
        np.testing.assert_array_equal(mus[name].drops, one.drops)
    with pytest.raises(ValueError, match=r"maps\['noise'\]: Got 2 maps for 3 images"):
        insertion_curve(model, x, {"true": maps["true"], "noise": maps["noise"][:2]})
    with pytest.raises(ValueError, match="empty dict"):
        mu_fidelity(model, x, {})


def test_faithfulness_scores_equal_the_separate_calls_with_fewer_passes(linear):
    model, w, counter = linear
    x, n, batch = _images(5), 5, 4
    true = _contributions(w, x, x.mean(axis=(1, 2), keepdims=True))
    maps = {"true": true, "flipped": -true}
    settings = dict(target=0, steps=6, grid_size=4, nb_samples=12, seed=3, batch_size=batch)
    calls, scores = _calls_of(
        counter,
        lambda: faithfulness_scores(model, x, maps, baseline="mean", draws=2, **settings),
    )
    # One clean pass, a curve per map set (2 methods + 2 noise draws) and kind, and one set
    # of MuFidelity copies for all six.
    assert calls == math.ceil(n / batch) + 2 * 4 * math.ceil(6 * n / batch) + math.ceil(
        12 * n / batch
    )
    assert list(scores) == ["true", "flipped", "random"]
    curve = dict(target=0, steps=6, baseline="mean", batch_size=batch)
    mu = dict(target=0, grid_size=4, nb_samples=12, seed=3, baseline="mean", batch_size=batch)
    for name, m in maps.items():
        _same_curve(scores[name].deletion, deletion_curve(model, x, m, **curve))
        _same_curve(scores[name].insertion, insertion_curve(model, x, m, **curve))
        one = mu_fidelity(model, x, m, **mu)
        np.testing.assert_array_equal(scores[name].mu_fidelity.correlation, one.correlation)
    reference = scores["random"]
    for kind in ("deletion", "insertion"):
        want = random_reference(kind, model, x, draws=2, seed=3, **curve)
        _same_curve(getattr(reference, kind), want)
    want = random_reference("mu_fidelity", model, x, draws=2, **mu)
    np.testing.assert_array_equal(reference.mu_fidelity.correlation, want.correlation)
    assert reference.mu_fidelity.draws == 2
    # Class 0's true contributions (against the mean colour) rank first, their negation
    # last, chance in between; MuFidelity of the true contributions is exactly 1.
    summary = {name: s.summary() for name, s in scores.items()}
    assert list(summary["true"]) == ["deletion_auc", "insertion_auc", "mu_fidelity"]
    for key, sign in (("deletion_auc", 1), ("insertion_auc", -1), ("mu_fidelity", -1)):
        ranked = sorted(summary, key=lambda name: sign * summary[name][key])
        assert ranked == ["true", "random", "flipped"], key
    assert summary["true"]["mu_fidelity"] == pytest.approx(1.0)
    assert summary["true"]["deletion_auc"] == pytest.approx(scores["true"].deletion.mean_auc)
    # draws=0: no reference.
    assert list(faithfulness_scores(model, x, maps, draws=0, **settings)) == ["true", "flipped"]
    with pytest.raises(ValueError, match="takes a dict"):
        faithfulness_scores(model, x, maps["true"])
    with pytest.raises(ValueError, match="'random' names the random reference"):
        faithfulness_scores(model, x, {"random": maps["true"]})
    with pytest.raises(ValueError, match="draws must be an int >= 0"):
        faithfulness_scores(model, x, maps, draws=-1)
