"""Correlations with bootstrap intervals, Pareto front and per-edge effects (analysis/stats.py)."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import N_BOOT
from scipy import stats

from robnas.analysis.edges import conv_edge_matrix, edge_labels
from robnas.analysis.stats import _kendall_rows, correlate, edge_effects, pareto_front
from robnas.space.search_space import get_space


def test_kendall_bootstrap_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, (40, 30)).astype(float)
    b = np.round(a + rng.normal(0, 2, a.shape))
    expected = [stats.kendalltau(x, y)[0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(_kendall_rows(a, b), expected, atol=1e-12)


def test_correlate_point_estimates_and_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    for method, fn in (
        ("pearson", stats.pearsonr),
        ("spearman", stats.spearmanr),
        ("kendall", stats.kendalltau),
    ):
        c = correlate(x, y, method, n_boot=N_BOOT, rng=3)
        assert c.coef == pytest.approx(fn(x, y)[0])
        assert c.low < c.coef < c.high and c.n == 50 and c.significant
    assert correlate(x, y, n_boot=N_BOOT, rng=3) == correlate(x, y, n_boot=N_BOOT, rng=3)
    flat = correlate(np.ones(10), y[:10], n_boot=N_BOOT)
    assert not flat.defined and not flat.significant


def test_pareto_front() -> None:
    cost = np.array([1, 2, 2, 3, 4, 5])
    value = np.array([10, 9, 12, 12, 15, 14])
    assert pareto_front(cost, value).tolist() == [0, 2, 4]


def test_edge_regression_ranks_planted_edge_first() -> None:
    space = get_space("darts")
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(80)]
    x = conv_edge_matrix(space, genotypes)
    y = 40 + 5 * x[:, 6] + rng.normal(0, 1, len(x))
    names = edge_labels(space)
    eff = edge_effects(x, y, [n for n, _ in names], [f for _, f in names], n_boot=N_BOOT, rng=0)
    assert eff.ranking()[0] == 6
    assert eff.low[6] > 3 and eff.high[6] < 6
    others = np.delete(np.arange(space.num_edges), 6)
    assert np.all(np.abs(eff.coef[others]) < 1.5)
