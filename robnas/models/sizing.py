"""Parameter (and, for macro spaces, FLOP) counts of genotypes without building their networks.

    num_params(space, genotype, macro=None, dataset="cifar10")
    min_params(space, macro=None, dataset="cifar10")   # the smallest any genotype reaches
    flops(space, genotype, ...), min_flops(space, ...)  # macro spaces: multiply-adds of one image

A cell network's parameters are a fixed part (stem, preprocessing, reductions, classifier) plus
one term per active (layer, edge, op). Both come from one supernet built on the meta device (no
memory, no compute), cached per space and macro size; a count is then a sum over the genotype.
A macro network's cost is exact arithmetic on its MacroConfig (`robnas.models.scaling`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from robnas.data.datasets import dataset_info
from robnas.errors import InvalidSpace
from robnas.genotype import Genotype
from robnas.models.builder import build_supernet, cell_size, macro_config
from robnas.models.network import CellDAG, edge_key
from robnas.models.scaling import Cost, macro_cost
from robnas.space.cell import CellSpace
from robnas.space.macro import MacroSpace
from robnas.space.search_space import SearchSpace


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class ParamTable:
    fixed: int
    #: per layer, per edge (canonical order), the parameters of each op on that edge
    ops: tuple[tuple[dict[str, int], ...], ...]

    def count(self, genotype: Genotype) -> int:
        total = self.fixed
        for layer, edges in enumerate(self.ops):
            cell = genotype.cell_for_layer(layer)
            flat = [edge for node in cell for edge in node]
            total += sum(edges[e][op] for e, edge in enumerate(flat) for op in edge)
        return total

    def minimum(self, choices: tuple[frozenset[str], ...] | None = None) -> int:
        """Smallest count over genotypes whose edges take one of `choices` (default: any op set)."""
        total = self.fixed
        for edges in self.ops:
            for costs in edges:
                options = choices if choices is not None else [frozenset()]
                total += min(sum(costs[op] for op in choice) for choice in options)
        return total


def param_table(space: CellSpace, macro: dict[str, Any], dataset: str) -> ParamTable:
    return _param_table(space, tuple(sorted(macro.items())), dataset)


@functools.lru_cache(maxsize=64)
def _param_table(
    space: CellSpace, macro_key: tuple[tuple[str, Any], ...], dataset: str
) -> ParamTable:
    with torch.device("meta"):
        supernet = build_supernet(space, dict(macro_key), dataset)
    dags = [m for m in supernet.modules() if isinstance(m, CellDAG)]
    per_layer = []
    for dag in dags:
        edges = []
        for node in range(space.nodes):
            for pred in range(space.inputs + node):
                ops = dag.edges[edge_key(node, pred)]
                assert isinstance(ops, torch.nn.ModuleDict)
                edges.append({op: _params(ops[op]) for op in space.ops})
        per_layer.append(tuple(edges))
    searchable = sum(sum(costs.values()) for layer in per_layer for costs in layer)
    return ParamTable(_params(supernet) - searchable, tuple(per_layer))


def num_params(
    space: SearchSpace,
    genotype: Genotype,
    macro: dict[str, Any] | None = None,
    dataset: str = "cifar10",
) -> int:
    """The parameter count of `build(space, genotype, macro, dataset)`, without building it."""
    if isinstance(space, MacroSpace):
        return cost(space, genotype, macro, dataset).params
    cells, m = cell_size(space, macro)
    cells.validate(genotype, m)
    return param_table(cells, m, dataset).count(genotype)


def min_params(
    space: SearchSpace, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
) -> int:
    """The smallest parameter count any genotype of the space reaches at this macro size."""
    if isinstance(space, MacroSpace):
        return min(num_params(space, g, macro, dataset) for g in space.smallest())
    cells, m = cell_size(space, macro)
    return param_table(cells, m, dataset).minimum()


def cost(
    space: MacroSpace,
    genotype: Genotype,
    macro: dict[str, Any] | None = None,
    dataset: str = "cifar10",
) -> Cost:
    """Exact parameters and MACs of a macro genotype's network, without building it."""
    info = dataset_info(dataset)
    return macro_cost(macro_config(space, genotype, macro), info.num_classes, info.image_size)


def flops(
    space: SearchSpace,
    genotype: Genotype,
    macro: dict[str, Any] | None = None,
    dataset: str = "cifar10",
) -> int:
    """Multiply-adds of one image (what `robnas arch info` and count_flops report)."""
    return cost(_macro_space(space), genotype, macro, dataset).macs


def min_flops(
    space: SearchSpace, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
) -> int:
    macros = _macro_space(space)
    return min(flops(macros, g, macro, dataset) for g in macros.smallest())


def _macro_space(space: SearchSpace) -> MacroSpace:
    if not isinstance(space, MacroSpace):
        raise InvalidSpace(
            f"FLOP counts without building are for macro spaces; {space.name} is a cell space"
        )
    return space


__all__ = ["ParamTable", "cost", "flops", "min_flops", "min_params", "num_params", "param_table"]
