"""What both search modes share: objectives, the search size per preset, the strategy with its budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robnas.genotype import Genotype
from robnas.space.search_space import SearchSpace
from robnas.strategies import Strategy, make_budget_predicate, make_strategy
from robnas.strategies.prescreen import Prescreened

SUPERNET_OBJECTIVES = {
    "pgd20_acc": "maximize",
    "clean_acc": "maximize",
    "fsp_dist": "minimize",
    "jac_norm": "minimize",
    "density": "maximize",
    "edge_density": "maximize",
}
#: RobNet searches a smaller supernet than it trains; the search size for each final preset.
SEARCH_SIZE = {"tiny": "tiny", "paper": "small"}


def _direction(key: str) -> str:
    return SUPERNET_OBJECTIVES.get(key, "maximize")


def flops_at(space: SearchSpace, macro: dict[str, Any], dataset: str) -> Callable[[Genotype], int]:
    def flops(genotype: Genotype) -> int:
        import torch

        from robnas.data.datasets import dataset_info
        from robnas.indicators import count_flops

        size = dataset_info(dataset).image_size
        with torch.device("meta"):
            model = space.build(genotype, macro, dataset)
        return count_flops(model, (1, 3, size, size))

    return flops


def build_strategy(
    settings: dict[str, Any],
    space: SearchSpace,
    seed: int,
    cheap: Callable[[Genotype], float] | None,
) -> Strategy:
    feasible = make_budget_predicate(
        space, settings["budget"], settings["final_macro"], settings["dataset"]
    )
    strategy = make_strategy(
        settings["strategy"],
        space,
        seed=seed,
        objective=settings["objective"],
        direction=settings["direction"],
        feasible=feasible,
    )
    if cheap is not None:
        return Prescreened(strategy, cheap, ratio=settings["prescreen_ratio"])
    return strategy
