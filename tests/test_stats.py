"""The report's statistics against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import stats


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # The outliers 0 and 100 fall in the trimmed quarters.
    assert stats.iqm([0, 0, 1, 1, 1, 1, 100, 100]) == pytest.approx(1.0)
    assert stats.iqm([100, 2, 1, 3]) == pytest.approx((2 + 3) / 2)  # order does not matter


def test_iqm_interval_contains_the_point_and_is_reproducible():
    scores = [12.0, 15.0, 9.0, 20.0, 14.0, 11.0, 18.0, 13.0]
    first = stats.iqm_interval(scores, reps=1000, seed=3)
    again = stats.iqm_interval(scores, reps=1000, seed=3)
    assert first == again
    assert first.value == pytest.approx(stats.iqm(scores))
    assert min(scores) <= first.low <= first.value <= first.high <= max(scores)
    assert first.low < first.high


def test_constant_scores_give_a_zero_width_interval():
    assert stats.iqm_interval([7.0] * 5, reps=200) == stats.Estimate(7.0, 7.0, 7.0)


def test_bootstrap_leaves_the_callers_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    stats.iqm_interval([1.0, 2.0, 3.0, 4.0], reps=200)
    assert np.random.random() == expected


def test_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    trials = 120
    covered = 0
    for trial in range(trials):
        sample = rng.normal(loc=5.0, scale=2.0, size=30)
        estimate = stats.mean_interval(sample, reps=400, seed=trial)
        covered += estimate.low <= 5.0 <= estimate.high
    # Percentile-bootstrap intervals of a mean of 30 normals cover a little under 95%.
    assert 0.85 <= covered / trials <= 0.99


def test_probability_of_improvement_of_separated_sets():
    better, worse = [10.0, 11.0, 12.0, 13.0], [1.0, 2.0, 3.0]
    assert stats.probability_of_improvement(better, worse) == stats.Estimate(1.0, 1.0, 1.0)
    assert stats.probability_of_improvement(worse, better) == stats.Estimate(0.0, 0.0, 0.0)
    assert stats.probability_of_improvement([1.0, 2.0], [1.0, 2.0]).value == pytest.approx(0.5)
    # One of four pairs is won and two are ties: (1 + 2 * 0.5) / 4.
    assert stats.probability_of_improvement([1.0, 2.0], [1.0, 1.0]).value == pytest.approx(0.75)


def test_ratio_of_means_and_its_interval():
    exact = stats.ratio_of_means([4.0, 4.0, 4.0], [2.0, 2.0])
    assert exact == stats.Estimate(2.0, 2.0, 2.0)
    noisy = stats.ratio_of_means([900.0, 1000.0, 1100.0], [450.0, 500.0, 550.0], reps=1000)
    assert noisy.value == pytest.approx(2.0)
    assert noisy.low < 2.0 < noisy.high
    with pytest.raises(ValueError, match="positive"):
        stats.ratio_of_means([1.0], [0.0])


def test_normalize_maps_random_to_zero_and_target_to_one():
    np.testing.assert_allclose(stats.normalize([20.0, 500.0, 260.0], 20.0, 500.0), [0.0, 1.0, 0.5])
    # Negative-reward envs (Pendulum: random ~ -1200, good ~ -170) normalize the same way.
    np.testing.assert_allclose(stats.normalize([-1200.0, -170.0], -1200.0, -170.0), [0.0, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        stats.normalize([1.0], 5.0, 5.0)


def test_iqm_curve_per_point():
    curves = np.array([[0.0, 10.0, 20.0], [0.0, 10.0, 20.0], [0.0, 10.0, 20.0]])
    centre, band = stats.iqm_curve(curves, reps=200)
    np.testing.assert_allclose(centre, [0.0, 10.0, 20.0])
    np.testing.assert_allclose(band, [[0.0, 10.0, 20.0], [0.0, 10.0, 20.0]])
    spread = np.array([[0.0, 5.0], [2.0, 9.0], [4.0, 7.0], [6.0, 8.0]])
    centre, band = stats.iqm_curve(spread, reps=500)
    assert centre.shape == (2,) and band.shape == (2, 2)
    assert np.all(band[0] <= centre) and np.all(centre <= band[1])


@pytest.mark.parametrize("bad, message", [([], "non-empty"), ([1.0, float("nan")], "finite"),
                                          ([[1.0, 2.0]], "1-D")])
def test_bad_scores_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        stats.iqm_interval(bad)
