"""Parameter counts of genotypes without building them.

A network's parameters are a fixed part (stem, preprocessing, reductions, classifier) plus one
term per active (layer, edge, op). Both come from one supernet built on the meta device (no
memory, no compute), cached per space and macro size; a count is then a sum over the genotype.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from robnas.genotype import Genotype

if TYPE_CHECKING:
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


def param_table(space: SearchSpace, macro: dict[str, Any], dataset: str) -> ParamTable:
    key = tuple(sorted(macro.items()))
    table = _param_table(space, key, dataset)
    return table


@functools.lru_cache(maxsize=64)
def _param_table(
    space: SearchSpace, macro_key: tuple[tuple[str, Any], ...], dataset: str
) -> ParamTable:
    from robnas.models.network import CellDAG, edge_key

    with torch.device("meta"):
        supernet = space.build_supernet(dict(macro_key), dataset)
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
