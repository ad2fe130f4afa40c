"""Predictor search: a tree ensemble of the objective on free cell features picks each next cell.

After `num_init` random genotypes, every ask (but the interleaved random ones, below) fits an extremely randomised trees ensemble
(scikit-learn's random-split trees; chosen by measurement, docs/predictor.md) to the scores
seen so far, on `CellFeatures` (GRAF-style graph statistics, #params and FLOPs at
`feature_macro`, one-hot edges): free, no query. Candidates are a pool of about `pool_size`
genotypes: uniform random samples (the share `explore`, default 1/5) and, half each of the
rest, one-edge neighbours of the `parents` best cells so far and two-edge neighbours of the best
cell (all of them enumerated when the space is small, random two-edge mutations otherwise).
Genotypes seen before, and isomorphs of them (same `SearchSpace.canonical` form: evaluating one
would be a cache hit that teaches nothing), are dropped. The pick maximises the acquisition over
the ensemble's per-tree predictions: `thompson` (one tree's prediction, drawn per ask; the
default, measured best on development seeds, docs/predictor.md), `ucb` (mean + kappa * spread)
or `ei` (expected improvement over the best score, spread as a normal SD). The budget predicate
is checked in the order of the acquisition, so only the few candidates that could win pay for
it.

Interleaved random cells (`random_every`, default 5): every ask made when the number of told
cells is a multiple of `random_every` (one in five) is a uniform random feasible cell of a class
not seen yet, whatever the model thinks of it, as SMAC interleaves random configurations (Hutter
et al. 2011). The pool alone cannot do this: its random samples are picked only when the model
rates them best, so a group of cells the model rates low from its first few members (on pgd@1,
the cells whose every path starts with a pooling) is never queried again, and a search that
started in the other group stays there. A random query lands in such a group at the group's
share of the space, and once one of its good cells is told, the model and the pool follow it.
Measured on development seeds (docs/predictor.md): it removes most trapped runs on pgd@1 for a
small loss on fgsm@1.

Polishing the incumbent (`stall`, default 5; `polish`, default 6): once the best score has not
improved for `stall` tells, the model's asks (not the interleaved random ones) are the
incumbent's unseen one-edge neighbours, picked by the ensemble's mean instead of one tree, at
most `polish` of them per incumbent; then the pool and Thompson sampling again. Thompson
sampling can leave a neighbour the trees rate low unqueried for good (development runs sat for
60 queries at the dataset's fourth best fgsm@1 cell, one edge from the second best); a local
search's look at the neighbourhood, in the model's order, cannot. The cap keeps the cost
bounded where the neighbourhood holds nothing better (measured on development seeds,
docs/predictor.md: uncapped polishing, or polishing two-edge neighbours by the mean, cost pgd@1
runs their optimum).

Cheap signals (optional, off by default): `signals(genotype) -> {name: value}` (e.g. zero-cost
indicators at initialisation: `evaluator_signals(IndicatorEvaluator(...))`) adds columns to the
model. They are computed for the told cells and for the `signal_shortlist` candidates the
feature-only model ranks best, then a second model on features + signals picks among the
shortlist. Each computation is a cheap evaluation: counted in `cheap_evaluations` and timed in
`cheap_seconds`, beside the queries, never hidden (signals read from a table, `TableSignals`,
charge the seconds recorded when the table was computed).

Restarts (optional, off by default): with `patience`, a climb that finds no better cell for
`patience` tells ends; the next one starts from cells the model picks among uniform random
samples (its first `num_init // 2` asks), and the pool's neighbours come from the new climb's
cells only. The model keeps learning from every told cell. This is local search's random
restart, guided by the model: a way out of a basin the pool's neighbourhoods cannot leave.

No proposal is an isomorph of a cell seen before (the random ones included): evaluating one would
be a cache hit that teaches nothing.

Deterministic for a seed: each fit draws its tree seed from the strategy's generator, and the
model is refitted from the told scores, so `load_state_dict` continues identically.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.result import Result
from robnas.space.cell import CellSpace
from robnas.space.search_space import cell_space
from robnas.strategies.base import Strategy, _always
from robnas.strategies.features import CellFeatures

ACQUISITIONS = ("ucb", "ei", "thompson")


def evaluator_signals(evaluator: Any, keys: Sequence[str] | None = None) -> Signals:
    """Cheap signals from any evaluator's metrics, e.g. an `IndicatorEvaluator` (zero-cost
    indicators of a seeded freshly initialised network): `keys` (default: every metric) of
    `evaluator.evaluate(genotype).metrics`. A failed evaluation raises: a signal must exist for
    every cell the model sees."""

    def signals(genotype: Genotype) -> dict[str, float]:
        result = evaluator.evaluate(genotype)
        if not result.ok:
            raise ConfigError(
                f"the signal evaluator failed on {genotype.to_str()} ({result.status}); "
                "use signals every cell has"
            )
        names = sorted(result.metrics) if keys is None else list(keys)
        missing = [k for k in names if k not in result.metrics]
        if missing:
            raise ConfigError(
                f"the signal evaluator gave no {', '.join(missing)}; it gives "
                f"{', '.join(sorted(result.metrics))}"
            )
        return {k: float(result.metrics[k]) for k in names}

    return signals


def finite_signals(values: np.ndarray) -> np.ndarray:
    """Signal values as the model reads them: non-finite ones (NASWOT of a cell with no path
    from the input is -inf) as 0."""
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


@functools.lru_cache(maxsize=1 << 17)
def _canonical(space: Any, genotype: Genotype) -> str:
    return str(space.canonical(genotype))


Signals = Callable[[Genotype], dict[str, float]]


class TreeEnsemble:
    """Extremely randomised trees (Geurts et al. 2006): `trees` scikit-learn decision trees with
    random split thresholds, each on the whole sample; the mean and the spread of their
    predictions. Built tree by tree (what `ExtraTreesRegressor` computes, without its per-fit
    overhead, which at n = 100 costs more than the trees).

    scikit-learn is imported here, on the first fit, so that importing robnas (and running
    `robnas --help`) never loads it."""

    def __init__(self, *, trees: int, max_features: float, seed: int) -> None:
        self.trees = trees
        self.max_features = max_features
        self.seed = seed
        self.members_: list[Any] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> TreeEnsemble:
        from sklearn.tree import DecisionTreeRegressor  # heavy: loaded when a model is fitted

        seeds = np.random.default_rng(self.seed).integers(2**31 - 1, size=self.trees)
        x = np.ascontiguousarray(x, dtype=np.float32)  # the trees' own dtype: checked once here
        y = np.ascontiguousarray(y, dtype=np.float64)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("tree ensemble: features and targets must be finite")
        self.members_ = [
            DecisionTreeRegressor(
                splitter="random", max_features=self.max_features, random_state=int(s)
            ).fit(x, y, check_input=False)
            for s in seeds
        ]
        return self

    def members(self, x: np.ndarray) -> np.ndarray:
        """Per-tree predictions, [trees, rows]."""
        x = np.asarray(x, dtype=np.float32)
        return np.stack([tree.tree_.predict(x).reshape(len(x), -1)[:, 0] for tree in self.members_])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self.members(x)
        return preds.mean(axis=0), preds.std(axis=0)


def _normal_ei(gap: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    sigma = np.maximum(sigma, 1e-9)
    z = gap / sigma
    return np.asarray(gap * norm.cdf(z) + sigma * norm.pdf(z))


class Predictor(Strategy):
    name = "predictor"
    space: CellSpace

    def __init__(
        self,
        space: Any,
        *,
        num_init: int = 10,
        pool_size: int = 500,
        parents: int = 5,
        explore: float = 0.2,
        acquisition: str = "thompson",
        kappa: float = 1.0,
        trees: int = 30,
        max_features: float = 0.3,
        feature_macro: dict[str, Any] | None = None,
        signals: Signals | None = None,
        signal_shortlist: int = 8,
        patience: int | None = None,
        random_every: int | None = 5,
        stall: int | None = 5,
        polish: int = 6,
        **kw: Any,
    ) -> None:
        super().__init__(cell_space(space), **kw)
        if num_init < 2:
            raise ValueError("num_init must be at least 2")
        if pool_size < 1 or parents < 1 or trees < 2 or signal_shortlist < 1:
            raise ValueError("pool_size, parents and signal_shortlist must be >= 1, trees >= 2")
        if acquisition not in ACQUISITIONS:
            raise ConfigError(
                f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}"
            )
        self.num_init = num_init
        self.pool_size = pool_size
        self.parents = parents
        if not 0.0 < explore <= 1.0:
            raise ValueError("explore (the pool's share of random samples) must be in (0, 1]")
        self.explore = explore
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.trees = trees
        self.max_features = max_features
        if feature_macro is None:
            feature_macro = space.resolve_macro("paper" if "paper" in space.sizes else None)
        self.features = CellFeatures(self.space, macro=feature_macro, onehot=True)
        self.signals = signals
        self.signal_shortlist = signal_shortlist
        if patience is not None and patience < 1:
            raise ValueError("patience must be at least 1 (or None: never restart)")
        self.patience = patience
        if random_every is not None and random_every < 1:
            raise ValueError("random_every must be at least 1 (or None: never interleave)")
        self.random_every = random_every
        if stall is not None and stall < 1:
            raise ValueError("stall must be at least 1 (or None: never polish the incumbent)")
        if polish < 1:
            raise ValueError("polish (asks per incumbent) must be at least 1")
        self.stall = stall
        self.polish = polish
        self.num_asked = 0
        #: the best score told so far and the tell count when it was reached (for `stall`)
        self.best_score = -math.inf
        self.best_at = 0
        #: asks that polished an incumbent (all of them, and those of the current incumbent)
        self.polished = 0
        self.polished_incumbent = 0
        #: the current climb (with `patience`): the cells told since it started, its best score
        #: and the tell count when that best was reached
        self.climb: list[str] = []
        self.climb_best = -math.inf
        self.climb_best_at = 0
        self.restarts = 0
        #: cheap evaluations (signals computed) and the seconds they took, reported by a run
        self.cheap_evaluations = 0
        self.cheap_seconds = 0.0
        self._signal_values: dict[str, dict[str, float]] = {}
        self._parsed: dict[str, Genotype] = {}

    # -- ask -------------------------------------------------------------------------------------

    def ask(self) -> Genotype:
        self.num_asked += 1
        told = sorted(k for k, v in self.scores.items() if math.isfinite(v))
        if len(told) < self.num_init:
            return self.random_new_class()
        if self._interleave():
            return self.random_new_class()
        if self.patience is not None and self.num_told - self.climb_best_at >= self.patience:
            self._restart()
        polish = self._polish_candidates(told) if self._stalled() else []
        cands = polish or self._candidates(told)
        if not cands:
            return self.random_new_class()
        acquisition = "mean" if polish else self.acquisition
        self.polished += bool(polish)
        self.polished_incumbent += bool(polish)
        y = np.array([self.scores[k] for k in told])
        x = self.features.matrix([self.parse(k) for k in told])
        model = TreeEnsemble(trees=self.trees, max_features=self.max_features, seed=self._draw())
        model.fit(x, y)
        gain = self._acquire(model, self.features.matrix(cands), y.max(), acquisition)
        if self.signals is not None:
            short = [cands[int(i)] for i in np.argsort(-gain, kind="stable")]
            return self._pick_with_signals(told, y, self._feasible_first(short), acquisition)
        order = np.lexsort((self.rng.random(len(cands)), -gain))  # random tie-breaking
        for i in order:
            if self.feasible is _always or self.feasible(cands[int(i)]):
                return self.propose(cands[int(i)])
        return self.random_new_class()

    def _interleave(self) -> bool:
        """Is this ask an interleaved random cell (`random_every`)?"""
        return self.random_every is not None and self.num_told % self.random_every == 0

    def _stalled(self) -> bool:
        """Polish the incumbent? (`stall` tells without a better cell, fewer than `polish` asks
        spent on this incumbent)"""
        if self.stall is None or self.polished_incumbent >= self.polish:
            return False
        return self.num_told - self.best_at >= self.stall

    def _polish_candidates(self, told: list[str]) -> list[Genotype]:
        """The incumbent's one-edge neighbours of unseen classes."""
        incumbent = self.parse(max(told, key=lambda k: self.scores[k]))
        return self._unseen(self.space.neighbours(incumbent))

    def _draw(self) -> int:
        return int(self.rng.integers(2**31 - 1))

    def _acquire(
        self, model: TreeEnsemble, x: np.ndarray, best: float, acquisition: str
    ) -> np.ndarray:
        preds = model.members(x)
        mean, spread = preds.mean(axis=0), preds.std(axis=0)
        if acquisition == "mean":
            return np.asarray(mean)
        if acquisition == "ucb":
            return np.asarray(mean + self.kappa * spread)
        if acquisition == "ei":
            return _normal_ei(mean - best, spread)
        return np.asarray(preds[int(self.rng.integers(len(preds)))])  # thompson

    def parse(self, text: str) -> Genotype:
        found = self._parsed.get(text)
        if found is None:
            found = self._parsed[text] = super().parse(text)
        return found

    def _class(self, genotype: Genotype) -> str:
        return _canonical(self.space, genotype)

    def _candidates(self, told: list[str]) -> list[Genotype]:
        """The pool: one-edge neighbours of the `parents` best cells and two-edge neighbours of
        the best one (all of them when they are few, random two-edge mutations otherwise), each
        up to (1 - explore) / 2 of `pool_size`, random samples for the rest; unseen classes
        only, one genotype per class, in a seed-determined order."""
        if self.patience is not None:
            climb = [k for k in self.climb if math.isfinite(self.scores.get(k, -math.inf))]
            if len(climb) < max(1, self.num_init // 2):
                return self._fresh(self.pool_size)  # a new climb starts where the model says
            told = climb
        best = sorted(told, key=lambda k: self.scores[k], reverse=True)[: self.parents]
        parents = [self.parse(k) for k in best]
        share = max(1, int(self.pool_size * (1 - self.explore) / 2))
        pool: list[Genotype] = []
        per_parent = max(1, share // len(parents))
        for parent in parents:
            pool.extend(self._subset(self.space.neighbours(parent), per_parent))
        ring = self.space.neighbours(parents[0])
        if len(ring) ** 2 <= 4 * self.pool_size:
            second = {g.to_str(): g for n in ring for g in self.space.neighbours(n)}
            pool.extend(self._subset(list(second.values()), share))
        else:
            for _ in range(share):
                pool.append(self.space.mutate(self.space.mutate(parents[0], self.rng), self.rng))
        for _ in range(max(int(self.pool_size * self.explore), self.pool_size - len(pool))):
            pool.append(self.sample())
        return self._unseen(pool)

    def random_new_class(self) -> Genotype:
        """A uniform random feasible genotype of a class not seen yet (of one seen before only
        when `max_tries` draws find none, as `sample_new` does)."""
        seen = self._seen_classes()
        for _ in range(self.max_tries):
            g = self.sample()
            if g.to_str() in self.seen or self._class(g) in seen:
                continue
            if self.feasible is _always or self.feasible(g):
                return self.propose(g)
        return self.sample_new()

    def _seen_classes(self) -> set[str]:
        return {self._class(self.parse(k)) for k in self.seen}

    def _fresh(self, size: int) -> list[Genotype]:
        """Uniform random samples only (the start of a new climb)."""
        return self._unseen([self.sample() for _ in range(size)])

    def _restart(self) -> None:
        """The climb found nothing better for `patience` tells: the next one starts afresh (the
        model keeps every told cell; only the parents of the pool change)."""
        self.climb = []
        self.climb_best = -math.inf
        self.climb_best_at = self.num_told
        self.restarts += 1

    def _unseen(self, pool: list[Genotype]) -> list[Genotype]:
        """Unseen classes only, one genotype per class, in pool order."""
        seen = self._seen_classes()
        out: dict[str, Genotype] = {}
        for g in pool:
            if g.to_str() in self.seen:
                continue
            form = self._class(g)
            if form not in seen and form not in out:
                out[form] = g
        return list(out.values())

    def _subset(self, genotypes: list[Genotype], size: int) -> list[Genotype]:
        if len(genotypes) <= size:
            return genotypes
        return [genotypes[int(i)] for i in self.rng.choice(len(genotypes), size, replace=False)]

    def _feasible_first(self, ranked: list[Genotype]) -> list[Genotype]:
        """The first `signal_shortlist` feasible genotypes of `ranked`."""
        short: list[Genotype] = []
        for g in ranked:
            if self.feasible is _always or self.feasible(g):
                short.append(g)
                if len(short) == self.signal_shortlist:
                    break
        return short

    # -- cheap signals ---------------------------------------------------------------------------

    def _signals_of(self, genotype: Genotype) -> dict[str, float]:
        key = genotype.to_str()
        if key not in self._signal_values:
            assert self.signals is not None
            start = time.perf_counter()
            values = {k: float(v) for k, v in self.signals(genotype).items()}
            recorded = getattr(self.signals, "recorded_seconds", None)
            # signals looked up in a table (TableSignals) charge what computing them took
            self.cheap_seconds += (
                recorded(genotype) if recorded is not None else time.perf_counter() - start
            )
            self.cheap_evaluations += 1
            self._signal_values[key] = values
        return self._signal_values[key]

    def _signal_matrix(self, genotypes: list[Genotype]) -> np.ndarray:
        rows = [self._signals_of(g) for g in genotypes]
        names = sorted(rows[0]) if rows else []
        for g, row in zip(genotypes, rows, strict=True):
            if sorted(row) != names:
                raise ConfigError(
                    f"signals of {g.to_str()} name {sorted(row)}, others {names}: every call "
                    "must return the same names"
                )
        return finite_signals(np.array([[row[n] for n in names] for row in rows], dtype=np.float64))

    def _pick_with_signals(
        self, told: list[str], y: np.ndarray, short: list[Genotype], acquisition: str
    ) -> Genotype:
        if not short:
            return self.random_new_class()
        genotypes = [self.parse(k) for k in told]
        x = np.hstack([self.features.matrix(genotypes), self._signal_matrix(genotypes)])
        model = TreeEnsemble(trees=self.trees, max_features=self.max_features, seed=self._draw())
        model.fit(x, y)
        xc = np.hstack([self.features.matrix(short), self._signal_matrix(short)])
        gain = self._acquire(model, xc, y.max(), acquisition)
        order = np.lexsort((self.rng.random(len(short)), -gain))
        return self.propose(short[int(order[0])])

    def _on_tell(self, genotype: Genotype, score: float, result: Result) -> None:
        if score > self.best_score:
            self.best_score, self.best_at = score, self.num_told
            self.polished_incumbent = 0
        if self.patience is not None:
            self.climb.append(genotype.to_str())
            if score > self.climb_best:
                self.climb_best, self.climb_best_at = score, self.num_told
        if self.signals is not None and math.isfinite(score):
            self._signals_of(genotype)  # a told cell's signals train the second model

    # -- state -----------------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {
            "num_asked": self.num_asked,
            "cheap_evaluations": self.cheap_evaluations,
            "cheap_seconds": self.cheap_seconds,
            "signal_values": dict(self._signal_values),
            "climb": list(self.climb),
            "climb_best": self.climb_best if math.isfinite(self.climb_best) else None,
            "climb_best_at": self.climb_best_at,
            "restarts": self.restarts,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "best_at": self.best_at,
            "polished": self.polished,
            "polished_incumbent": self.polished_incumbent,
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.num_asked = int(state["num_asked"])
        self.cheap_evaluations = int(state["cheap_evaluations"])
        self.cheap_seconds = float(state["cheap_seconds"])
        self._signal_values = {
            k: {n: float(v) for n, v in row.items()} for k, row in state["signal_values"].items()
        }
        self.climb = list(state["climb"])
        best = state["climb_best"]
        self.climb_best = -math.inf if best is None else float(best)
        self.climb_best_at = int(state["climb_best_at"])
        self.restarts = int(state["restarts"])
        # states saved before polishing existed lack these keys: start its bookkeeping afresh
        best = state.get("best_score")
        self.best_score = -math.inf if best is None else float(best)
        self.best_at = int(state.get("best_at", 0))
        self.polished = int(state.get("polished", 0))
        self.polished_incumbent = int(state.get("polished_incumbent", 0))


__all__ = ["ACQUISITIONS", "Predictor", "Signals", "TreeEnsemble", "evaluator_signals"]
