"""The strategy interface: ask for a genotype, tell its result; seeded; state saved and restored.

Every strategy sees a budget as a `feasible(genotype) -> bool` predicate and never proposes an
infeasible genotype. Scores are signed so that higher is better whatever the direction; a
result whose status is not "ok" (a failed or pre-screened-out candidate) scores -inf, so it is
remembered (never proposed again) but never preferred.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from robnas.errors import BudgetError, ConfigError
from robnas.genotype import Genotype
from robnas.models.sizing import min_params, num_params
from robnas.result import Result, signed_score
from robnas.space.search_space import SearchSpace
from robnas.specs import format_count

Feasible = Callable[[Genotype], bool]
DIRECTIONS = ("maximize", "minimize")


def _always(_: Genotype) -> bool:
    return True


def make_budget_predicate(
    space: SearchSpace, budget: int | None, macro: dict[str, Any], dataset: str = "cifar10"
) -> Feasible:
    """`num_params(g, macro) <= budget` at the final macro size; checks the space minimum first."""
    if budget is None:
        return _always
    minimum = min_params(space, macro, dataset)
    if budget < minimum:
        raise BudgetError(
            f"budget {format_count(budget)} is below the smallest {space.name} network at this size "
            f"({format_count(minimum)} = {minimum} parameters); raise --budget or pick a smaller --final-size"
        )

    def feasible(genotype: Genotype) -> bool:
        return num_params(space, genotype, macro, dataset) <= budget

    return feasible


class Strategy(ABC):
    """ask() -> Genotype, tell(genotype, result); deterministic for a seed."""

    name: ClassVar[str] = ""
    #: True for strategies that optimise (objective, num_params) jointly
    multi_objective: ClassVar[bool] = False
    #: Max draws when looking for a feasible, not yet seen genotype before giving up.
    max_tries: ClassVar[int] = 2000

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int,
        objective: str,
        direction: str = "maximize",
        feasible: Feasible | None = None,
        free: bool = False,
        macro: dict[str, Any] | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction must be maximize or minimize, got {direction!r}")
        self.space = space
        self.seed = int(seed)
        self.objective = objective
        self.direction = direction
        self.feasible = feasible or _always
        self.free = free
        self.macro = macro
        self.rng = np.random.default_rng(self.seed)
        #: canonical string -> signed score of every told genotype (higher is better)
        self.scores: dict[str, float] = {}
        #: genotypes proposed or told, never proposed again
        self.seen: set[str] = set()
        self.num_told = 0

    # -- the interface -------------------------------------------------------------------------

    @abstractmethod
    def ask(self) -> Genotype: ...

    def tell(self, genotype: Genotype, result: Result) -> None:
        key = genotype.to_str()
        self.seen.add(key)
        self.scores[key] = self.score(result)
        self.num_told += 1
        self._on_tell(genotype, self.scores[key], result)

    def _on_tell(self, genotype: Genotype, score: float, result: Result) -> None:  # noqa: B027
        """Strategy-specific learning; the base class has already recorded the score."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; a fresh strategy loading it continues identically."""
        return {
            "name": self.name,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "scores": dict(self.scores),
            "seen": sorted(self.seen),
            "num_told": self.num_told,
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"state of strategy {state.get('name')!r} given to {self.name!r}")
        self.rng.bit_generator.state = state["rng"]
        self.scores = {k: float(v) for k, v in state["scores"].items()}
        self.seen = set(state["seen"])
        self.num_told = int(state["num_told"])
        self._load_extra(state)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state: dict[str, Any]) -> None:  # noqa: B027
        pass

    def reseed(self, seed: int) -> None:
        """Start over with another seed (before the first ask; used for extra workers)."""
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    # -- helpers -------------------------------------------------------------------------------

    def score(self, result: Result) -> float:
        return signed_score(result, self.objective, self.direction)

    def parse(self, text: str) -> Genotype:
        return Genotype.from_str(text, self.space.name)

    def best(self) -> tuple[str, float] | None:
        if not self.scores:
            return None
        key = max(self.scores, key=lambda k: self.scores[k])
        return key, self.scores[key]

    def sample(self) -> Genotype:
        return self.space.sample(self.rng, free=self.free, macro=self.macro)

    def sample_new(self) -> Genotype:
        """A uniformly random feasible genotype not seen before (seen ones only if none is left)."""
        fallback: Genotype | None = None
        for _ in range(self.max_tries):
            g = self.sample()
            if not self.feasible(g):
                continue
            if g.to_str() not in self.seen:
                return self.propose(g)
            fallback = fallback or g
        if fallback is not None:
            return self.propose(fallback)
        raise BudgetError(
            f"{self.name}: no feasible genotype in {self.max_tries} random draws; the budget is too tight for this space"
        )

    def propose(self, genotype: Genotype) -> Genotype:
        self.seen.add(genotype.to_str())
        return genotype

    def fresh_feasible(self, candidates: list[Genotype]) -> list[Genotype]:
        return [g for g in candidates if g.to_str() not in self.seen and self.feasible(g)]
