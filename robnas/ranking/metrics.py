"""Rank agreement between a score and a ground truth.

A budgeted search only ever compares cells of about the same size, so besides the usual Kendall
tau and Spearman rho over all cells we report Kendall tau *within groups* (cells with the same
parameter count), pooling the pairs of every group: tau-b with numerator sum_g (C_g - D_g) and
denominator sqrt(sum_g untied-in-score pairs * sum_g untied-in-truth pairs). Pairs across groups
never enter it, so counting parameters scores exactly 0 there by construction.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class PairCounts:
    concordant: int
    discordant: int
    untied_score: int  # pairs not tied in the score
    untied_truth: int  # pairs not tied in the truth

    def __add__(self, other: PairCounts) -> PairCounts:
        return PairCounts(
            self.concordant + other.concordant,
            self.discordant + other.discordant,
            self.untied_score + other.untied_score,
            self.untied_truth + other.untied_truth,
        )

    @property
    def tau_b(self) -> float:
        denom = math.sqrt(self.untied_score * self.untied_truth)
        return (self.concordant - self.discordant) / denom if denom else float("nan")


def pair_counts(score: np.ndarray, truth: np.ndarray) -> PairCounts:
    """Concordant/discordant/untied pair counts by brute force (groups are small: O(n^2))."""
    ds = np.sign(score[:, None] - score[None, :])
    dt = np.sign(truth[:, None] - truth[None, :])
    upper = np.triu(np.ones_like(ds, dtype=bool), k=1)
    prod = (ds * dt)[upper]
    return PairCounts(
        concordant=int((prod > 0).sum()),
        discordant=int((prod < 0).sum()),
        untied_score=int((ds[upper] != 0).sum()),
        untied_truth=int((dt[upper] != 0).sum()),
    )


def _clean(score: Values, truth: Values) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(score, dtype=float), np.asarray(truth, dtype=float)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"score and truth must be 1-D of one length, got {s.shape} and {t.shape}")
    keep = ~(np.isnan(s) | np.isnan(t))
    return s[keep], t[keep]


def _varies(s: np.ndarray, t: np.ndarray) -> bool:
    """A rank correlation needs two values and some spread on both sides (else it is undefined)."""
    return len(s) > 1 and np.ptp(s) > 0 and np.ptp(t) > 0


def kendall(score: Values, truth: Values) -> float:
    s, t = _clean(score, truth)
    return float(kendalltau(s, t).statistic) if _varies(s, t) else float("nan")


def spearman(score: Values, truth: Values) -> float:
    s, t = _clean(score, truth)
    return float(spearmanr(s, t).statistic) if _varies(s, t) else float("nan")


def kendall_within(score: Values, truth: Values, groups: Sequence[Hashable]) -> tuple[float, int]:
    """Pooled within-group tau-b and the number of within-group pairs it rests on."""
    s, t = np.asarray(score, dtype=float), np.asarray(truth, dtype=float)
    ids: dict[Hashable, int] = {}
    g = np.asarray([ids.setdefault(x, len(ids)) for x in groups])
    total = PairCounts(0, 0, 0, 0)
    pairs = 0
    for key in np.unique(g):
        members = (g == key) & ~np.isnan(s) & ~np.isnan(t)
        n = int(members.sum())
        if n < 2:
            continue
        total = total + pair_counts(s[members], t[members])
        pairs += n * (n - 1) // 2
    return total.tau_b, pairs


def top_precision(score: Values, truth: Values, fraction: float) -> float:
    """Share of the score's top `fraction` of cells that are in the truth's top `fraction`."""
    s, t = _clean(score, truth)
    k = max(1, round(fraction * len(s)))
    # stable tie-breaking by position so ties cannot favour the score
    top_s = set(np.argsort(-s, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_s & top_t) / k


def agreement(score: Values, truth: Values, groups: Sequence[Hashable]) -> dict[str, float]:
    """Every agreement number the ranking report prints, in one dict."""
    within, pairs = kendall_within(score, truth, groups)
    return {
        "kendall": kendall(score, truth),
        "spearman": spearman(score, truth),
        "kendall_within": within,
        "within_pairs": float(pairs),
        "top5": top_precision(score, truth, 0.05),
        "top10": top_precision(score, truth, 0.10),
    }


def tau_gain(
    score: Values, baseline: Values, truth: Values, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Kendall tau of `score` minus that of `baseline` against `truth`, with a 95% paired
    bootstrap interval: both taus on the same resampled cells, so the noise they share (which
    cells were drawn) cancels. "Beats the baseline" means the interval lies above 0."""
    a, b, t = (np.asarray(v, dtype=float) for v in (score, baseline, truth))
    keep = ~(np.isnan(a) | np.isnan(b) | np.isnan(t))
    a, b, t = a[keep], b[keep], t[keep]
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(t), size=len(t))
        diffs[i] = kendall(a[idx], t[idx]) - kendall(b[idx], t[idx])
    finite = diffs[np.isfinite(diffs)]
    low, high = np.quantile(finite, [0.025, 0.975]) if len(finite) else (math.nan, math.nan)
    return kendall(a, t) - kendall(b, t), float(low), float(high)


def tau_within_interval(
    score: Values,
    truth: Values,
    groups: Sequence[Hashable],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Pooled within-group Kendall tau and its 95% bootstrap interval over the cells (each
    resample keeps the cells' groups; a cell drawn twice ties with itself and adds no pair)."""
    s, t = np.asarray(score, dtype=float), np.asarray(truth, dtype=float)
    g = np.asarray(list(groups))
    if not len(s) == len(t) == len(g):
        raise ValueError(f"score, truth and groups differ in length: {len(s)}, {len(t)}, {len(g)}")
    rng = np.random.default_rng(seed)
    taus = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(s), size=len(s))
        taus[i] = kendall_within(s[idx], t[idx], g[idx].tolist())[0]
    finite = taus[np.isfinite(taus)]
    low, high = np.quantile(finite, [0.025, 0.975]) if len(finite) else (math.nan, math.nan)
    return kendall_within(s, t, g.tolist())[0], float(low), float(high)
