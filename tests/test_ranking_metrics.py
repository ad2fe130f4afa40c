"""Rank-agreement metrics against scipy and against hand-countable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from robnas.ranking.metrics import (
    agreement,
    kendall_within,
    pair_counts,
    tau_gain,
    top_precision,
)


def test_pair_counts_tau_b_equals_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 40).astype(float)  # many ties on both sides
    t = s + rng.integers(0, 3, 40)
    assert pair_counts(s, t).tau_b == pytest.approx(kendalltau(s, t).statistic, abs=1e-12)


def test_within_groups_ignores_pairs_across_groups() -> None:
    # inside each group the score is perfectly reversed; across groups it is perfectly right
    truth = np.array([1, 2, 3, 11, 12, 13], dtype=float)
    score = np.array([3, 2, 1, 13, 12, 11], dtype=float)
    groups = ["a", "a", "a", "b", "b", "b"]
    tau, pairs = kendall_within(score, truth, groups)
    assert pairs == 6 and tau == pytest.approx(-1.0)
    assert kendalltau(score, truth).statistic > 0  # overall it looks good


def test_parameter_count_scores_zero_within_equal_parameter_groups() -> None:
    rng = np.random.default_rng(1)
    params = rng.integers(0, 4, 60)
    truth = params + rng.normal(0, 1, 60)
    tau, _ = kendall_within(params.astype(float), truth, params.tolist())
    assert math.isnan(tau)  # no untied pair: the count says nothing inside a group
    metrics = agreement(params.astype(float), truth, params.tolist())
    assert metrics["kendall"] > 0.3


def test_top_precision_counts_the_overlap() -> None:
    truth = np.arange(100, dtype=float)
    score = truth.copy()
    score[99], score[0] = score[0], score[99]  # the best cell ranked last, the worst first
    assert top_precision(score, truth, 0.05) == pytest.approx(4 / 5)
    assert top_precision(truth, truth, 0.10) == 1.0


def test_nan_rows_are_dropped_not_ranked() -> None:
    truth = np.array([1.0, 2.0, np.nan, 4.0])
    score = np.array([1.0, 2.0, 100.0, 4.0])
    assert agreement(score, truth, [0, 0, 0, 0])["kendall"] == pytest.approx(1.0)


def test_tau_gain_is_the_tau_difference_with_a_paired_interval() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    sharp = truth + 0.3 * rng.normal(size=300)
    blunt = truth + 1.5 * rng.normal(size=300)
    gain, low, high = tau_gain(sharp, blunt, truth, n_boot=500)
    expected = kendalltau(sharp, truth).statistic - kendalltau(blunt, truth).statistic
    assert gain == pytest.approx(expected)
    assert 0 < low < gain < high
    gain, low, high = tau_gain(blunt, sharp, truth, n_boot=500)
    assert low < gain < high < 0
    # a ranker against itself gains exactly nothing on every resample
    assert tau_gain(blunt, blunt, truth, n_boot=200) == (0.0, 0.0, 0.0)


def test_tau_gain_of_equally_good_rankers_is_not_called_a_win() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=400)
    one, other = (truth + rng.normal(size=400) for _ in range(2))
    gain, low, high = tau_gain(one, other, truth, n_boot=500)
    assert low < 0 < high and abs(gain) < 0.05


def test_tau_within_interval_brackets_the_estimate_and_narrows_with_signal() -> None:
    from robnas.ranking.metrics import tau_within_interval

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 20)
    truth = rng.normal(size=200)
    good = truth + 0.3 * rng.normal(size=200)
    tau, low, high = tau_within_interval(good, truth, groups.tolist(), n_boot=200)
    assert tau == kendall_within(good, truth, groups.tolist())[0]
    assert low < tau < high and low > 0.5
    noise = rng.normal(size=200)
    tau, low, high = tau_within_interval(noise, truth, groups.tolist(), n_boot=200)
    assert low < 0 < high
    with pytest.raises(ValueError, match="length"):
        tau_within_interval(good, truth, groups[:5].tolist())
