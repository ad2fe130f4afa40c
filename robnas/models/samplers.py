"""Path samplers for one-shot supernet training: which genotype trains at each step.

All are seeded numpy streams whose state round-trips through `state_dict()` (saved in
checkpoints). `free=True` samples one cell per layer (cell-free / RobNet-free paths).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from robnas.errors import ConfigError, UnknownName
from robnas.genotype import Edge, Genotype
from robnas.space.cell import CellSpace


class PathSampler:
    name = "sampler"

    def __init__(
        self,
        space: CellSpace,
        seed: int,
        *,
        free: bool = False,
        macro: dict[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.seed = int(seed)
        self.free = free
        self.cells = space.num_layers(macro) if free else 1
        self.rng = np.random.default_rng(self.seed)

    def sample(self) -> Genotype:
        raise NotImplementedError

    def start(self, total_steps: int) -> None:
        """Told by the training loop how many paths the run will draw (a schedule may use it)."""

    def _from_bits(self, bits: np.ndarray) -> Genotype:
        """A genotype from a (edges x cells, ops) boolean array of subset-space bits."""
        ops = self.space.ops
        return self._from_edges([frozenset(o for o, on in zip(ops, row) if on) for row in bits])

    def _from_edges(self, edges: list[Edge]) -> Genotype:
        n = self.space.num_edges
        cells = tuple(
            self.space.cell_from_edges(edges[c * n : (c + 1) * n]) for c in range(self.cells)
        )
        return Genotype(self.space.name, cells)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seed": self.seed,
            "free": self.free,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or bool(state.get("free")) != self.free:
            raise ValueError(
                f"sampler state is for {state.get('name')!r} (free={state.get('free')}), "
                f"not {self.name!r} (free={self.free})"
            )
        self.rng.bit_generator.state = state["rng"]


class UniformOpSampler(PathSampler):
    """RobNet's sampling: every edge uniform over its choices (each (edge, op) bit a fair coin on
    subset spaces), independently per edge and cell."""

    name = "uniform_op"

    def sample(self) -> Genotype:
        cells = tuple(self.space.sample(self.rng).cells[0] for _ in range(self.cells))
        return Genotype(self.space.name, cells)


class UniformDensitySampler(PathSampler):
    """Density uniform over its levels: draw k active (edge, op) pairs uniformly from 1..max,
    then k distinct pairs uniformly (choice spaces: k active edges, each a uniform non-none op).
    Under per-bit sampling the density concentrates near 1/2; here dense and sparse paths train
    equally often. k counts over all cells of a cell-free path."""

    name = "uniform_density"

    def sample(self) -> Genotype:
        space, rng = self.space, self.rng
        n_ops, n_edges = len(space.ops), space.num_edges
        if space.edge_kind == "choice" and not space.allows_none:
            # Every edge holds exactly one op: density is fixed, so sample uniformly.
            return UniformOpSampler.sample(self)  # type: ignore[arg-type]
        slots = n_edges * self.cells
        if space.edge_kind == "subset":
            total = slots * n_ops
            k = int(rng.integers(1, total + 1))
            chosen = rng.choice(total, size=k, replace=False)
            active = np.zeros(total, dtype=bool)
            active[chosen] = True
            bits = active.reshape(slots, n_ops)
            edges: list[Edge] = [
                frozenset(op for op, on in zip(space.ops, row) if on) for row in bits
            ]
        else:
            k = int(rng.integers(1, slots + 1))
            picked = set(rng.choice(slots, size=k, replace=False).tolist())
            ops = rng.integers(n_ops, size=slots)
            edges = [
                frozenset([space.ops[int(ops[i])]]) if i in picked else frozenset()
                for i in range(slots)
            ]
        return self._from_edges(edges)


class FairOpSampler(PathSampler):
    """Strictly fair sampling (FairNAS, Chu et al. 2021): over every window of steps each op of
    each edge trains exactly equally often, not just in expectation. Choice spaces: a window is
    K steps (K choices per edge) and each edge runs a fresh random permutation of its choices.
    Subset spaces: a window is 2 steps, a uniform path then its complement, so every (edge, op)
    bit is on exactly once per window."""

    name = "fair_op"

    def __init__(self, space: CellSpace, seed: int, **kw: Any) -> None:
        super().__init__(space, seed, **kw)
        self.queue: list[Genotype] = []

    def _window(self) -> list[Genotype]:
        space, rng = self.space, self.rng
        slots = space.num_edges * self.cells
        if space.edge_kind == "subset":
            bits = rng.random((slots, len(space.ops))) < 0.5
            return [self._from_bits(bits), self._from_bits(~bits)]
        choices = space.edge_choices  # every edge of a choice space has the same choices
        perms = [rng.permutation(len(choices)) for _ in range(slots)]
        return [
            self._from_edges([choices[perm[step]] for perm in perms])
            for step in range(len(choices))
        ]

    def sample(self) -> Genotype:
        if not self.queue:
            self.queue = self._window()
        return self.queue.pop(0)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "queue": [g.to_str() for g in self.queue]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.queue = [Genotype.from_str(s) for s in state.get("queue", [])]


class DenseStartSampler(PathSampler):
    """Progressive shrinking for subset spaces (after Once-for-All, Cai et al. 2020): each
    (edge, op) bit is on with probability falling linearly from 1 (the whole supernet) to 1/2
    over the first `dense` of the run's draws (default half), then 1/2, i.e. uniform op
    sampling. Every weight trains from the first step; the sub-paths the search scores train
    after. A space with one op per edge (nb201) has no whole supernet to start from: there it
    samples as uniform_op. On the tiny darts supernet it bought 3 points of clean accuracy for
    an eighth more time (README)."""

    name = "dense_start"

    def __init__(self, space: CellSpace, seed: int, *, dense: float = 0.5, **kw: Any) -> None:
        super().__init__(space, seed, **kw)
        if not 0 <= dense <= 1:
            raise ConfigError(f"dense must lie in [0, 1] (a fraction of the run), got {dense}")
        self.dense = float(dense)
        self.dense_steps = 0  # until start() is told the run's length: uniform
        self.drawn = 0

    def start(self, total_steps: int) -> None:
        self.dense_steps = round(self.dense * total_steps)

    def on_probability(self) -> float:
        """The chance that each (edge, op) bit is on in the next path."""
        if self.dense_steps <= 0:
            return 0.5
        return 1.0 - 0.5 * min(1.0, self.drawn / self.dense_steps)

    def sample(self) -> Genotype:
        if self.space.edge_kind != "subset":  # one op per edge: no whole supernet to start from
            return UniformOpSampler.sample(self)  # type: ignore[arg-type]
        p = self.on_probability()
        self.drawn += 1
        slots = self.space.num_edges * self.cells
        return self._from_bits(self.rng.random((slots, len(self.space.ops))) < p)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "dense_steps": self.dense_steps, "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.dense_steps, self.drawn = int(state["dense_steps"]), int(state["drawn"])


class UniformClassSampler(PathSampler):
    """Isomorphism classes uniformly, then a member of the class uniformly. Uniform op sampling
    over-trains big classes (NB201: a class can hold hundreds of strings, e.g. every cell whose
    output never sees the input); here each class, i.e. each distinct network, trains equally
    often. Needs an enumerable space (NB201: 15,625 cells, 6,466 classes)."""

    name = "uniform_class"
    MAX_CELLS = 1_000_000

    def __init__(self, space: CellSpace, seed: int, **kw: Any) -> None:
        super().__init__(space, seed, **kw)
        if self.free or space.size > self.MAX_CELLS:
            raise ConfigError(
                f"uniform_class sampling enumerates the space; {space.name} has {space.size:,} "
                "cells (or a cell-free path was asked): use uniform_op or fair_op"
            )
        members: dict[str, list[Genotype]] = {}
        for values in itertools.product(*(d.choices for d in space.dimensions())):
            g = space.decode(values)
            members.setdefault(space.canonical_key(g), []).append(g)
        self.classes = [members[k] for k in sorted(members)]

    def sample(self) -> Genotype:
        group = self.classes[int(self.rng.integers(len(self.classes)))]
        return group[int(self.rng.integers(len(group)))]


SAMPLERS: dict[str, type[PathSampler]] = {
    UniformOpSampler.name: UniformOpSampler,
    UniformDensitySampler.name: UniformDensitySampler,
    FairOpSampler.name: FairOpSampler,
    DenseStartSampler.name: DenseStartSampler,
    UniformClassSampler.name: UniformClassSampler,
}


def make_sampler(
    name: str,
    space: CellSpace,
    seed: int,
    *,
    free: bool = False,
    macro: dict[str, Any] | None = None,
) -> PathSampler:
    if name not in SAMPLERS:
        raise UnknownName(f"unknown path sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](space, seed, free=free, macro=macro)
