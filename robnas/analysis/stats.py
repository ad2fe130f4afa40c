"""Statistics for the study analysis: bootstrap correlations, Pareto fronts, edge regressions.

Everything takes its randomness as a seed or `numpy.random.Generator`; nothing seeds globally.
Confidence intervals are percentile intervals over paired bootstrap resamples of the trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # two-sided significance level and 95% intervals throughout
METHODS = ("pearson", "spearman", "kendall")


@dataclass(frozen=True)
class Correlation:
    """One coefficient with its bootstrap interval, p-value and sample size."""

    method: str
    coef: float
    low: float
    high: float
    p: float
    n: int

    @property
    def defined(self) -> bool:
        return math.isfinite(self.coef)

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0 and p < 0.05: only then does a finding count as supported."""
        return (
            self.defined
            and math.isfinite(self.low)
            and (self.low > 0 or self.high < 0)
            and self.p < ALPHA
        )

    def text(self) -> str:
        if not self.defined:
            return f"{self.method} undefined (a constant variable, n={self.n})"
        return (
            f"{self.method} {self.coef:+.3f} [95% CI {self.low:+.3f}, {self.high:+.3f}], "
            f"p={format_p(self.p)}, n={self.n}"
        )


def format_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def _coef(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    if method == "pearson":
        r = stats.pearsonr(x, y)
    elif method == "spearman":
        r = stats.spearmanr(x, y)
    elif method == "kendall":
        r = stats.kendalltau(x, y)
    else:
        raise ValueError(f"unknown correlation {method!r}; use one of {', '.join(METHODS)}")
    return float(r[0]), float(r[1])


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two (B, n) arrays; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / denom, np.nan)


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b, NaN when either variable is constant."""
    return _coef("kendall", np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0]


def bootstrap_indices(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, size=(n_boot, n))


def bootstrap_coefs(method: str, x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    xb, yb = x[idx], y[idx]
    if method == "pearson":
        return _pearson_rows(xb, yb)
    if method == "spearman":
        return _pearson_rows(stats.rankdata(xb, axis=1), stats.rankdata(yb, axis=1))
    if len(x) <= PAIRWISE_MAX_N:
        return _kendall_rows(xb, yb)
    out = np.empty(len(idx))
    for b in range(len(idx)):  # large n: scipy's O(n log n) per resample beats O(n^2) pairs
        out[b] = stats.kendalltau(xb[b], yb[b])[0] if np.ptp(xb[b]) and np.ptp(yb[b]) else np.nan
    return out


PAIRWISE_MAX_N = 200  # above this, pairs cost more than a scipy call per resample
_CHUNK_ELEMENTS = 4_000_000


def _kendall_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of two (B, n) arrays via pair signs, in memory-bounded chunks.

    tau-b = sum(sx*sy) / sqrt(sum(sx^2) * sum(sy^2)) over pairs i<j, sx = sign(x_i - x_j); it
    equals scipy's tau-b, ties included.
    """
    i, j = np.triu_indices(a.shape[1], 1)
    out = np.empty(len(a))
    step = max(1, _CHUNK_ELEMENTS // max(len(i), 1))
    for start in range(0, len(a), step):
        sa = np.sign(a[start : start + step, i] - a[start : start + step, j]).astype(np.float32)
        sb = np.sign(b[start : start + step, i] - b[start : start + step, j]).astype(np.float32)
        num = (sa * sb).sum(axis=1, dtype=np.float64)
        den = np.sqrt(
            np.abs(sa).sum(axis=1, dtype=np.float64) * np.abs(sb).sum(axis=1, dtype=np.float64)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(den > 0, num / den, np.nan)
    return out


def interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if len(finite) < 0.5 * len(samples) or not len(finite):
        return math.nan, math.nan
    low, high = np.quantile(finite, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def correlate(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    method: str = "kendall",
    *,
    n_boot: int = 2000,
    rng: np.random.Generator | int = 0,
) -> Correlation:
    """A correlation coefficient with a paired-bootstrap 95% interval and scipy's p-value.

    Pairs with a non-finite value are dropped first; n counts the pairs used.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    if n < 3:
        return Correlation(method, math.nan, math.nan, math.nan, math.nan, n)
    coef, p = _coef(method, xa, ya)
    if not math.isfinite(coef):
        return Correlation(method, coef, math.nan, math.nan, math.nan, n)
    gen = np.random.default_rng(rng)
    low, high = interval(bootstrap_coefs(method, xa, ya, bootstrap_indices(n, n_boot, gen)))
    return Correlation(method, coef, low, high, p, n)


def correlate_all(
    x: np.ndarray, y: np.ndarray, *, n_boot: int, seed: int
) -> dict[str, Correlation]:
    """Pearson, Spearman and Kendall, each with the same seed (so the same resamples)."""
    return {m: correlate(x, y, m, n_boot=n_boot, rng=seed) for m in METHODS}


def pareto_front(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (lower or equal cost and higher value), by cost."""
    order = np.lexsort((-value, cost))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if value[i] > best:
            front.append(int(i))
            best = float(value[i])
    return np.asarray(front, dtype=int)


@dataclass(frozen=True)
class EdgeEffects:
    """Ridge regression of an outcome on per-edge indicators with bootstrap intervals.

    `coef[k]` is the change of the outcome when edge k holds a convolution, the others fixed.
    `group_diff` is mean(coef of input edges) - mean(coef of node-to-node edges).
    """

    names: tuple[str, ...]
    from_input: tuple[bool, ...]
    coef: np.ndarray
    low: np.ndarray
    high: np.ndarray
    frequency: np.ndarray  # share of trials with a conv on the edge
    group_diff: float
    group_low: float
    group_high: float
    n: int
    ridge: float
    dropped: tuple[str, ...]  # edges without variation in these trials (no estimate possible)

    def ranking(self) -> list[int]:
        """Edge indices by estimated effect, largest first (NaN last)."""
        key = np.where(np.isfinite(self.coef), self.coef, -np.inf)
        return [int(i) for i in np.argsort(-key, kind="stable")]


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Ridge with an unpenalised intercept; returns the slopes only."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    gram = xc.T @ xc + lam * np.eye(x.shape[1])
    return np.linalg.solve(gram, xc.T @ yc)


def edge_effects(
    features: np.ndarray,
    outcome: np.ndarray,
    names: Sequence[str],
    from_input: Sequence[bool],
    *,
    ridge: float = 1.0,
    n_boot: int = 2000,
    rng: np.random.Generator | int = 0,
) -> EdgeEffects:
    """Per-edge effects on the outcome (ridge keeps it stable when edges are collinear or n is small)."""
    x = np.asarray(features, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if x.ndim != 2 or x.shape[0] != len(y) or x.shape[1] != len(names):
        raise ValueError("features must be (n_trials, n_edges) matching outcome and names")
    n, k = x.shape
    varies = np.ptp(x, axis=0) > 0 if n else np.zeros(k, dtype=bool)
    coef = np.full(k, np.nan)
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    inputs = np.asarray(from_input, dtype=bool)
    diff = diff_low = diff_high = math.nan
    if n >= 3 and varies.any():
        cols = np.flatnonzero(varies)
        coef[cols] = _ridge(x[:, cols], y, ridge)
        gen = np.random.default_rng(rng)
        boots = np.full((n_boot, k), np.nan)
        for b, idx in enumerate(bootstrap_indices(n, n_boot, gen)):
            xb = x[idx][:, cols]
            ok = np.ptp(xb, axis=0) > 0
            boots[b, cols[ok]] = _ridge(xb[:, ok], y[idx], ridge)
        for j in cols:
            low[j], high[j] = interval(boots[:, j])
        a, c = varies & inputs, varies & ~inputs
        if a.any() and c.any():
            diff = float(coef[a].mean() - coef[c].mean())
            with warnings.catch_warnings():  # a resample may lose every edge of a group
                warnings.simplefilter("ignore", RuntimeWarning)
                boot_diff = np.nanmean(boots[:, a], axis=1) - np.nanmean(boots[:, c], axis=1)
            diff_low, diff_high = interval(boot_diff)
    return EdgeEffects(
        names=tuple(names),
        from_input=tuple(bool(v) for v in inputs),
        coef=coef,
        low=low,
        high=high,
        frequency=x.mean(axis=0) if n else np.zeros(k),
        group_diff=diff,
        group_low=diff_low,
        group_high=diff_high,
        n=n,
        ridge=ridge,
        dropped=tuple(nm for nm, v in zip(names, varies, strict=True) if not v),
    )


def excludes_zero(low: float, high: float) -> bool:
    return math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0)
