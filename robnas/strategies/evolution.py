"""Regularized evolution (Real et al., AAAI 2019): tournament selection, age-based removal.

A population of the last `population_size` evaluated genotypes (oldest removed first, whatever
its score). Until it is full, children are random samples; afterwards each child is a one-edge
mutation of the best of `sample_size` members drawn at random. Defaults follow NASLib's NB201
setting (population 30, sample 10), the setup of the robustness dataset's NAS experiment.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from robnas.genotype import Genotype
from robnas.strategies.base import Strategy


class RegularizedEvolution(Strategy):
    name = "regularized_evolution"

    def __init__(self, space: Any, *, population_size: int = 30, sample_size: int = 10, **kw: Any):
        super().__init__(space, **kw)
        if not 1 <= sample_size <= population_size:
            raise ValueError("need 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[str] = deque()
        self.num_asked = 0

    def ask(self) -> Genotype:
        self.num_asked += 1
        if len(self.population) < self.population_size:
            return self.sample_new()
        members = list(self.population)
        picks = self.rng.choice(len(members), size=self.sample_size, replace=False)
        parent = max((members[int(i)] for i in picks), key=lambda k: self.scores[k])
        return self._mutate_new(self.parse(parent))

    def _mutate_new(self, parent: Genotype) -> Genotype:
        # One-edge mutations first; if the parent's neighbourhood is used up, walk further.
        current = parent
        for attempt in range(self.max_tries):
            child = self.space.mutate(current, self.rng)
            if self.feasible(child) and child.to_str() not in self.seen:
                return self.propose(child)
            if attempt % 50 == 49:
                current = child
        return self.sample_new()

    def _on_tell(self, genotype: Genotype, score: float, result: Any) -> None:
        self.population.append(genotype.to_str())
        if len(self.population) > self.population_size:
            self.population.popleft()

    def _extra_state(self) -> dict[str, Any]:
        return {"population": list(self.population), "num_asked": self.num_asked}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.population = deque(state["population"])
        self.num_asked = int(state["num_asked"])
