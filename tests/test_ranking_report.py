"""The combined rankers of robnas.ranking.report: each signal ranked inside its parameter group."""

from __future__ import annotations

import numpy as np
import pytest

from robnas.ranking.metrics import kendall_within
from robnas.ranking.report import params_then_mean_rank, ranks_over_all, within_ranks


def _disagreeing_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two parameter groups of three cells. Signal `a` is offset by size (its small group sits
    far below the big one), signal `b` is not. Inside the small group a and b disagree: by ranks
    over all cells b's spread outweighs a's there, by ranks within the group they weigh the same."""
    params = np.array([10, 10, 10, 20, 20, 20])
    a = np.array([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])  # rises inside each group
    b = np.array([9.0, 5.0, 0.0, 4.0, 3.0, 7.0])  # small group: falls, spread far wider than a
    truth = np.array([3.0, 1.0, 2.0, 1.0, 2.0, 3.0])
    return params, a, b, truth


def test_within_ranks_rank_inside_each_group_only() -> None:
    params, a, b, _ = _disagreeing_table()
    assert within_ranks(a, params).tolist() == pytest.approx([0.25, 0.5, 0.75] * 2)
    assert within_ranks(b, params).tolist() == pytest.approx([0.75, 0.5, 0.25, 0.5, 0.25, 0.75])
    # ties share their mean rank; a group of one sits in the middle
    assert within_ranks(np.array([1.0, 1.0, 5.0]), np.array([1, 1, 2])).tolist() == [
        pytest.approx(0.5),
        pytest.approx(0.5),
        pytest.approx(0.5),
    ]
    with pytest.raises(ValueError, match="shape"):
        within_ranks(a, params[:3])


def test_mean_rank_within_groups_differs_from_the_mean_of_global_ranks() -> None:
    """The documented ranker (mean of within-group ranks) and the defect it replaces (mean of
    ranks over all cells, then ordered within groups) order the small group differently."""
    params, a, b, truth = _disagreeing_table()
    documented = params_then_mean_rank(params, a, b)
    small = slice(0, 3)
    # within: a gives 1,2,3 and b 3,2,1 -> all three tie at the mean rank
    assert np.ptp(documented[small]) == pytest.approx(0.0)
    glob = np.mean([ranks_over_all(a), ranks_over_all(b)], axis=0)
    # over all cells: a ranks them 1,2,3 and b 6,4,1 -> means 3.5, 3, 2: cell 0 first
    assert np.argsort(-glob[small]).tolist() == [0, 1, 2]
    assert kendall_within(glob, truth, params)[0] != pytest.approx(
        kendall_within(documented, truth, params)[0]
    )
    # the parameter count still orders the groups: every big cell above every small one
    assert documented[3:].min() > documented[small].max()


def test_one_signal_orders_each_group_as_the_signal_does() -> None:
    params, _, b, _ = _disagreeing_table()
    combined = params_then_mean_rank(params, b)
    for group in (slice(0, 3), slice(3, 6)):
        assert np.argsort(combined[group]).tolist() == np.argsort(b[group]).tolist()
