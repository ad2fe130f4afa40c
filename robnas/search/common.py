"""What every search mode shares: FLOPs at the final size, the budget gate and the strategy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robnas import models
from robnas.data.datasets import dataset_info
from robnas.errors import BudgetError, ConfigError
from robnas.genotype import Genotype
from robnas.indicators import count_flops
from robnas.models import sizing
from robnas.search.settings import SearchSettings
from robnas.space.macro import MacroSpace
from robnas.space.search_space import SearchSpace
from robnas.specs import Budget, format_count
from robnas.strategies import Strategy, make_budget_predicate, make_strategy
from robnas.strategies.prescreen import Prescreened


def flops_at(space: SearchSpace, macro: dict[str, Any], dataset: str) -> Callable[[Genotype], int]:
    """Multiply-adds of a genotype's network at `macro` (exact for a macro space; a cell
    space's network is built on the meta device and counted)."""
    if isinstance(space, MacroSpace):
        return lambda genotype: sizing.flops(space, genotype, macro, dataset)

    def flops(genotype: Genotype) -> int:
        size = dataset_info(dataset).image_size
        with torch.device("meta"):
            model = models.build(space, genotype, macro, dataset)
        return count_flops(model, (1, 3, size, size))

    return flops


class BudgetGate:
    """The budget at the final (deployed) size, counting what it refuses: parameters, and
    multiply-adds where the space can count them exactly (macro spaces).

    `rejected` counts refusals (a strategy may ask about one genotype several times);
    `rejected_distinct` the distinct genotypes refused. On resume the strategy replays its
    proposals from the start, so the counts cover the whole search. A budget below the
    smallest network of the space is refused when the gate is built.
    """

    def __init__(
        self, space: SearchSpace, budget: Budget, final_macro: dict[str, Any], dataset: str
    ) -> None:
        self.budget = budget
        self.final_macro = dict(final_macro)
        within_params = make_budget_predicate(space, budget.params, final_macro, dataset)
        self._feasible = within_params
        if budget.flops is not None:
            if not isinstance(space, MacroSpace):
                raise ConfigError(
                    "--flops-budget applies to macro spaces (--space wrn); use --budget"
                )
            limit, minimum = budget.flops, sizing.min_flops(space, final_macro, dataset)
            if limit < minimum:
                raise BudgetError(
                    f"FLOPs budget {format_count(limit)} is below the smallest {space.name} "
                    f"network ({format_count(minimum)} multiply-adds); raise --flops-budget"
                )

            def feasible(genotype: Genotype) -> bool:
                return within_params(genotype) and (
                    sizing.flops(space, genotype, final_macro, dataset) <= limit
                )

            self._feasible = feasible
        self.rejected = 0
        self._refused: set[str] = set()

    def __call__(self, genotype: Genotype) -> bool:
        ok = self._feasible(genotype)
        if not ok:
            self.rejected += 1
            self._refused.add(genotype.to_str())
        return bool(ok)

    @property
    def rejected_distinct(self) -> int:
        return len(self._refused)

    def report(self) -> dict[str, Any]:
        """The summary's `budget` block."""
        return {
            "limit": self.budget.params,
            "final_macro": self.final_macro,
            "rejected": self.rejected,
            "rejected_distinct": self.rejected_distinct,
            "flops_limit": self.budget.flops,
        }


def build_strategy(
    settings: SearchSettings,
    space: SearchSpace,
    seed: int,
    gate: BudgetGate,
    cheap: Callable[[Genotype], float] | None = None,
) -> Strategy:
    """The settings' strategy under the budget `gate`, prescreened by `cheap` when given."""
    strategy = make_strategy(
        settings.strategy,
        space,
        seed=seed,
        objective=settings.objective,
        direction=settings.direction,
        feasible=gate,
    )
    if cheap is not None:
        return Prescreened(strategy, cheap, ratio=settings.prescreen_ratio)
    return strategy


def cheap_evaluations(strategy: Strategy) -> int:
    """Cheap scores a prescreen computed (0 without one)."""
    return strategy.cheap_evaluations if isinstance(strategy, Prescreened) else 0


__all__ = ["BudgetGate", "build_strategy", "cheap_evaluations", "flops_at"]
