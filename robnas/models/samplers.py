"""Path samplers for one-shot supernet training: which genotype trains at each step.

Both are seeded numpy streams whose state round-trips through `state_dict()` (saved in
checkpoints). `free=True` samples one cell per layer (cell-free / RobNet-free paths).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robnas.genotype import Edge, Genotype
from robnas.space.search_space import SearchSpace


class PathSampler:
    name = "sampler"

    def __init__(
        self,
        space: SearchSpace,
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
        cells = tuple(
            space.cell_from_edges(edges[c * n_edges : (c + 1) * n_edges]) for c in range(self.cells)
        )
        return Genotype(space.name, cells)


SAMPLERS: dict[str, type[PathSampler]] = {
    UniformOpSampler.name: UniformOpSampler,
    UniformDensitySampler.name: UniformDensitySampler,
}


def make_sampler(
    name: str,
    space: SearchSpace,
    seed: int,
    *,
    free: bool = False,
    macro: dict[str, Any] | None = None,
) -> PathSampler:
    from robnas.errors import UnknownName

    if name not in SAMPLERS:
        raise UnknownName(f"unknown path sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](space, seed, free=free, macro=macro)
