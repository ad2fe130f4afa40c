"""Surrogate search (ours): Bayesian optimisation with a Gaussian process, plus GP-guided local steps.

After `num_init` random genotypes, every ask fits a GP to the scores seen so far. Every
`local_every`-th ask (default: every second) proposes the unseen one-edge neighbour of the best
genotype with the highest expected improvement (a local-search step ranked by the model); the
others propose the candidate of the whole space with the highest expected improvement. The kernel is k(a, b) = exp(-theta * d(a, b)),
d the fraction of edges whose op set differs (a Hamming kernel, as in COMBO/CoCaBO for
categorical inputs); theta and the noise level are chosen by marginal likelihood on a small grid.
Genotypes isomorphic to an evaluated one (same `SearchSpace.canonical` form) are not proposed:
evaluating them would be a free cache hit that teaches nothing (every strategy gets that cache
hit; this only saves an ask). Candidates are every genotype of the
space when it is small (NB201: 15,625 cells, enumerated once
as codes), otherwise a pool of one- and two-edge mutations of the best genotypes plus random
samples. The budget predicate is checked lazily, in the order of the acquisition, on the
few candidates that could win, so a huge candidate set costs nothing up front and a tight budget
does not recompute the acquisition per rejected candidate.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.stats import norm

from robnas.genotype import Genotype, edge_to_str
from robnas.space.cell import CellSpace
from robnas.space.search_space import cell_space
from robnas.strategies.base import Strategy, _always

THETAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
NOISES = (1e-4, 1e-3, 1e-2, 1e-1)
#: kernel = exp(-theta * (mix * hamming + (1 - mix) * path distance)); mix chosen by likelihood
MIXES = (0.0, 0.5, 1.0)


def path_vocabulary(space: CellSpace) -> dict[tuple[int, tuple[str, ...]], int]:
    """Every (cell input, op sequence) an input-to-output path can carry, BANANAS-style."""
    longest = space.nodes if space.output == "concat" else space.nodes
    vocab: dict[tuple[int, tuple[str, ...]], int] = {}
    for start in range(space.inputs):
        for length in range(1, longest + 1):
            for ops in itertools.product(space.ops, repeat=length):
                vocab[(start, ops)] = len(vocab)
    return vocab


def path_counts(space: CellSpace, genotype: Genotype, vocab: dict[Any, int]) -> np.ndarray:
    """How many input-to-output paths carry each op sequence; isomorphic cells mostly agree."""
    out = np.zeros(len(vocab) * len(genotype.cells), dtype=np.float64)
    outputs = (
        range(space.nodes) if space.output == "concat" else [space.nodes - 1]
    )  # intermediate node indices
    for c, cell in enumerate(genotype.cells):
        # paths[node] = list of (start input, op sequence) reaching intermediate node `node`
        paths: list[list[tuple[int, tuple[str, ...]]]] = []
        for node in range(space.nodes):
            here: list[tuple[int, tuple[str, ...]]] = []
            for pred, edge in enumerate(cell[node]):
                for op in sorted(edge):
                    if pred < space.inputs:
                        here.append((pred, (op,)))
                    else:
                        here.extend((s, seq + (op,)) for s, seq in paths[pred - space.inputs])
            paths.append(here)
        offset = c * len(vocab)
        for node in outputs:
            for item in paths[node]:
                out[offset + vocab[item]] += 1.0
    return out


@functools.lru_cache(maxsize=8)
def _enumerated_space(space: CellSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes, one-hot and path features and isomorph class ids of every shared cell of a small
    space (computed once, shared by all runs)."""
    k, e = len(space.edge_choices), space.num_edges
    codes = np.array(list(itertools.product(range(k), repeat=e)), dtype=np.int64)
    vocab = path_vocabulary(space)
    genotypes = [
        space.decode([edge_to_str(space.edge_choices[int(i)]) for i in row]) for row in codes
    ]
    paths = np.stack([path_counts(space, g, vocab) for g in genotypes])
    names: dict[str, int] = {}
    classes = np.array([names.setdefault(space.canonical(g), len(names)) for g in genotypes])
    return codes, _onehot(codes, k).astype(np.float32), paths.astype(np.float32), classes


Features = tuple[np.ndarray, np.ndarray]  # (one-hot edge choices, path counts)


@functools.lru_cache(maxsize=8)
def _enumerated_f64(space: CellSpace) -> tuple[Features, np.ndarray]:
    """The enumerated features as float64 (numpy would cast them in every product) and their
    squared path norms (as float32 sums, exactly what `_distance` computed from them)."""
    _, onehot, paths, _ = _enumerated_space(space)
    return (onehot.astype(np.float64), paths.astype(np.float64)), (paths**2).sum(1)


@dataclass(frozen=True)
class Model:
    x: Features
    top: float
    scale: float
    mix: float
    theta: float
    chol: np.ndarray
    alpha: np.ndarray


def _ei(gap: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return gap * norm.cdf(gap / sigma) + sigma * norm.pdf(gap / sigma)


def _onehot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((codes.shape[0], codes.shape[1] * k), dtype=np.float64)
    rows = np.repeat(np.arange(codes.shape[0]), codes.shape[1])
    cols = (np.arange(codes.shape[1]) * k + codes).ravel()
    out[rows, cols] = 1.0
    return out


class Surrogate(Strategy):
    name = "surrogate"
    space: CellSpace

    def __init__(
        self,
        space: Any,
        *,
        num_init: int = 10,
        local_every: int = 2,
        enumerate_limit: int = 50_000,
        pool_size: int = 1000,
        **kw: Any,
    ) -> None:
        super().__init__(cell_space(space), **kw)
        if num_init < 2:
            raise ValueError("num_init must be at least 2")
        self.num_init = num_init
        self.local_every = local_every
        self.num_asked = 0
        self.pool_size = pool_size
        self.choices = space.edge_choices
        self._code = {ch: i for i, ch in enumerate(self.choices)}
        self._vocab = path_vocabulary(space)
        self.enumerate = not self.free and space.size <= enumerate_limit
        self.infeasible: set[int] = set()  # enumerated rows found over the budget
        self._feasible_rows: set[int] = set()  # enumerated rows found within it
        self._classes: dict[str, str] = {}  # genotype string -> canonical form
        self._rows: dict[str, int] = {}  # genotype string -> enumerated row
        self._parsed: dict[str, Genotype] = {}
        self._path_cache: dict[str, np.ndarray] = {}
        #: told genotype -> its Hamming and squared path distances to every enumerated cell
        self._columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- encodings -------------------------------------------------------------------------------

    def codes(self, genotype: Genotype) -> np.ndarray:
        return np.array(
            [self._code[e] for c in range(len(genotype.cells)) for e in genotype.edges(c)],
            dtype=np.int64,
        )

    def features(self, genotypes: list[Genotype]) -> tuple[np.ndarray, np.ndarray]:
        codes = np.stack([self.codes(g) for g in genotypes])
        paths = np.stack([self._paths(g) for g in genotypes])
        return _onehot(codes, len(self.choices)), paths

    def _paths(self, genotype: Genotype) -> np.ndarray:
        key = genotype.to_str()
        if key not in self._path_cache:
            self._path_cache[key] = path_counts(self.space, genotype, self._vocab)
        return self._path_cache[key]

    def parse(self, text: str) -> Genotype:
        if text not in self._parsed:
            self._parsed[text] = super().parse(text)
        return self._parsed[text]

    def _row(self, codes: np.ndarray) -> int:
        k = len(self.choices)
        return int(sum(int(c) * k**i for i, c in enumerate(codes[::-1])))

    def _genotype(self, codes: np.ndarray) -> Genotype:
        return self.space.decode([edge_to_str(self.choices[int(c)]) for c in codes])

    # -- the GP ----------------------------------------------------------------------------------

    def _distance(self, a: Features, b: Features, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Hamming distance (fraction of edges differing) and scaled squared path distance."""
        edges = a[0].shape[1] / len(self.choices)
        ham = (edges - a[0] @ b[0].T) / edges
        sq = (a[1] ** 2).sum(1)[:, None] + (b[1] ** 2).sum(1)[None, :] - 2 * a[1] @ b[1].T
        return ham, np.clip(sq, 0, None) / scale

    def _fit(self, x: Features, y_raw: np.ndarray) -> Model:
        """The GP (kernel mix, theta, noise by marginal likelihood) on standardised scores."""
        y = (y_raw - y_raw.mean()) / (y_raw.std() or 1.0)
        _, sq = self._distance(x, x, 1.0)
        scale = float(np.mean(sq[sq > 0])) if np.any(sq > 0) else 1.0
        ham, path = self._distance(x, x, scale)
        best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None
        eye = np.eye(len(y))
        for mix in MIXES:
            dist = mix * ham + (1 - mix) * path
            for theta in THETAS:
                base = np.exp(-theta * dist)
                for noise in NOISES:
                    try:
                        chol = cholesky(base + noise * eye, lower=True, check_finite=False)
                    except np.linalg.LinAlgError:
                        continue
                    z = solve_triangular(chol, y, lower=True, check_finite=False)
                    nll = 0.5 * z @ z + np.log(np.diag(chol)).sum()
                    if best is None or nll < best[0]:
                        best = (nll, mix, theta, chol, z)
        assert best is not None
        _, mix, theta, chol, z = best
        return Model(
            x,
            float(y.max()),
            scale,
            mix,
            theta,
            chol,
            solve_triangular(chol.T, z, check_finite=False),
        )

    def _expected_improvement(
        self,
        model: Model,
        cand: Features,
        allowed: np.ndarray,
        feasible: Callable[[int], bool] | None = None,
        distances: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """EI of the allowed candidates (-inf elsewhere and where it cannot win).

        With `feasible(row)`, candidates are checked in decreasing EI only while they could
        still win; the infeasible ones read -inf, so the maximum is feasible. `distances`:
        `_distance(cand, model.x, model.scale)` when already known."""
        c_ham, c_path = distances or self._distance(cand, model.x, model.scale)
        k_star = np.exp(-model.theta * (model.mix * c_ham + (1 - model.mix) * c_path))
        mu = k_star @ model.alpha
        # EI grows with sigma <= 1, so EI(mu, 1) bounds it: the exact EI is only needed for the
        # candidates whose bound beats the best exact value found (a few hundred, not all).
        bound = np.where(allowed, _ei(mu - model.top, np.ones_like(mu)), -np.inf)
        ei = np.full_like(mu, -np.inf)
        order = np.argsort(-bound, kind="stable")
        best_exact, start = -np.inf, 0
        while start < len(order) and bound[order[start]] > best_exact:
            rows = order[start : start + 512]
            rows = rows[np.isfinite(bound[rows])]
            v = solve_triangular(model.chol, k_star[rows].T, lower=True, check_finite=False)
            sigma = np.sqrt(np.clip(1.0 - (v**2).sum(0), 1e-12, None))
            ei[rows] = _ei(mu[rows] - model.top, sigma)
            for row in rows[np.argsort(-ei[rows], kind="stable")]:
                if ei[row] <= best_exact:
                    break
                if feasible is None or feasible(int(row)):
                    best_exact = float(ei[row])
                    break
                ei[row] = -np.inf
            start += 512
        return ei

    def _pick(self, ei: np.ndarray, feasible: Callable[[int], bool] | None = None) -> int:
        # random tie-breaking keeps seeds distinct when EI is flat
        noise = self.rng.random(len(ei))
        top = np.flatnonzero(ei == ei.max())
        if feasible is None:
            return int(top[np.argmax(noise[top])])
        ranked = top[np.argsort(-noise[top], kind="stable")]
        return int(next((r for r in ranked if feasible(int(r))), ranked[0]))

    # -- ask -------------------------------------------------------------------------------------

    def ask(self) -> Genotype:
        self.num_asked += 1
        told = [k for k in self.scores if math.isfinite(self.scores[k])]
        if len(told) < self.num_init:
            return self.sample_new()
        genotypes = [self.parse(k) for k in told]
        model = self._fit(self.features(genotypes), np.array([self.scores[k] for k in told]))
        if self.local_every and self.num_asked % self.local_every == 0:
            local = self._ask_local(model, told)
            if local is not None:
                return local
        if self.enumerate:
            return self._ask_enumerated(model, told)
        return self._ask_pool(model, genotypes)

    def _class(self, key: str) -> str:
        form = self._classes.get(key)
        if form is None:
            form = self._classes[key] = self.space.canonical(self.parse(key))
        return form

    def _seen_classes(self) -> set[str]:
        return {self._class(k) for k in self.seen}

    def _feasible_row(self, row: int) -> bool:
        """The budget predicate on an enumerated cell (remembered both ways)."""
        if row in self.infeasible:
            return False
        if row not in self._feasible_rows:
            codes = _enumerated_space(self.space)[0]
            if not self.feasible(self._genotype(codes[row])):
                self.infeasible.add(row)
                return False
            self._feasible_rows.add(row)
        return True

    def _ask_local(self, model: Model, told: list[str]) -> Genotype | None:
        """GP-ranked local search: the best unseen neighbour of the best genotypes so far.

        Every `local_every`-th query refines around the incumbent (the runner-ups if its
        neighbourhood is used up), so the search converges like local search even when the
        model misleads the global EI step.
        """
        seen_classes = self._seen_classes()
        for key in sorted(told, key=lambda k: self.scores[k], reverse=True)[:5]:
            cands = [
                g
                for g in self.fresh_feasible(self.space.neighbours(self.parse(key)))
                if self.space.canonical(g) not in seen_classes
            ]
            if cands:
                ei = self._expected_improvement(
                    model, self.features(cands), np.ones(len(cands), dtype=bool)
                )
                return self.propose(cands[self._pick(ei)])
        return None

    def _enumerated_distances(self, model: Model, told: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`_distance(enumerated, model.x, model.scale)`, from columns kept per told genotype
        (a told genotype's distances to every cell never change; the counts are small integers,
        so the sums are exact and equal the full matrix product's)."""
        (onehot, paths), sq = _enumerated_f64(self.space)
        edges = onehot.shape[1] / len(self.choices)
        for key in told:
            if key not in self._columns:
                x_onehot, x_paths = self.features([self.parse(key)])
                ham = (edges - onehot @ x_onehot[0]) / edges
                d = sq.astype(np.float64) + (x_paths[0] ** 2).sum() - 2 * paths @ x_paths[0]
                self._columns[key] = (ham, np.clip(d, 0, None))
        ham = np.stack([self._columns[k][0] for k in told], axis=1)
        path = np.stack([self._columns[k][1] for k in told], axis=1) / model.scale
        return ham, path

    def _ask_enumerated(self, model: Model, told: list[str]) -> Genotype:
        codes, _, _, classes = _enumerated_space(self.space)
        allowed = np.ones(len(codes), dtype=bool)
        allowed[list(self.infeasible)] = False
        # an isomorph of an evaluated cell is a cache hit: not worth an ask
        seen_rows = [
            self._rows.setdefault(k, self._row(self.codes(self.parse(k)))) for k in self.seen
        ]
        allowed[np.isin(classes, classes[seen_rows])] = False
        if not allowed.any():
            return self.sample_new()
        check = None if self.feasible is _always else self._feasible_row
        features = _enumerated_f64(self.space)[0]
        distances = self._enumerated_distances(model, told)
        ei = self._expected_improvement(model, features, allowed, check, distances)
        if not np.isfinite(ei.max()):  # every allowed cell is over the budget
            return self.sample_new()
        row = self._pick(ei, check)
        return self.propose(self._genotype(codes[row]))

    def _ask_pool(self, model: Model, genotypes: list[Genotype]) -> Genotype:
        scores = [self.scores[g.to_str()] for g in genotypes]
        ranked = [genotypes[int(i)] for i in np.argsort(scores)[::-1][:5]]
        pool: dict[str, Genotype] = {}
        for g in ranked:
            for n in self.space.neighbours(g)[: self.pool_size // 10]:
                pool.setdefault(n.to_str(), n)
        for _ in range(self.pool_size // 4):
            g = self.space.mutate(self.space.mutate(ranked[0], self.rng), self.rng)
            pool.setdefault(g.to_str(), g)
        for _ in range(self.pool_size // 4):
            g = self.sample()
            pool.setdefault(g.to_str(), g)
        seen_classes = self._seen_classes()
        cands = [
            g
            for g in self.fresh_feasible(list(pool.values()))
            if self.space.canonical(g) not in seen_classes
        ]
        if not cands:
            return self.sample_new()
        ei = self._expected_improvement(
            model, self.features(cands), np.ones(len(cands), dtype=bool)
        )
        return self.propose(cands[self._pick(ei)])

    def _extra_state(self) -> dict[str, Any]:
        return {"infeasible": sorted(self.infeasible), "num_asked": self.num_asked}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.infeasible = {int(r) for r in state["infeasible"]}
        self.num_asked = int(state["num_asked"])
