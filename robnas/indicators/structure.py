"""Structural indicators: density, edge density, parameters and FLOPs.

As indicators they read the genotype a network was built from (`model.genotype`, set by
`robnas.models.build` and `supernet.extract`); the evaluators call `genotype_structure` directly, which
measures parameters and FLOPs at a given macro size (the final network's) without building it:
both are sums over per-(layer, edge, op) tables measured once per space and size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from robnas.data.datasets import dataset_info
from robnas.errors import ConfigError, RobnasError
from robnas.genotype import Genotype
from robnas.indicators.base import IndicatorConfig, check_batch
from robnas.indicators.complexity import count_flops, count_params
from robnas.models import sizing
from robnas.models.builder import build_supernet
from robnas.models.network import CellDAG, edge_key
from robnas.space.cell import CellSpace
from robnas.space.search_space import get_cell_space

#: indicator names that depend only on the genotype and the macro size, not on weights
STRUCTURAL = ("density", "edge_density", "num_params", "flops")


def _genotype_of(model: nn.Module) -> tuple[CellSpace, Genotype]:
    # a network built from a genotype, or a Supernet with its path set
    genotype = getattr(model, "genotype", None) or getattr(model, "path", None)
    space = getattr(model, "space", None)
    if isinstance(genotype, Genotype) and isinstance(space, CellSpace):
        return space, genotype
    name = getattr(model, "space_name", None)
    if not isinstance(genotype, Genotype) or not isinstance(name, str):
        raise ConfigError(
            f"{type(model).__name__} was not built from a genotype; density needs a network "
            "from robnas.models.build or supernet.extract, or a supernet with set_path(genotype)"
        )
    try:
        return get_cell_space(name), genotype
    except RobnasError:
        raise ConfigError(
            f"space {name!r} of the model is not a built-in space; use genotype_structure(space, ...)"
        ) from None


def density(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Active (edge, op) pairs over all of them (RobNet finding 1: denser cells are more robust)."""
    space, genotype = _genotype_of(model)
    return space.density(genotype)


def edge_density(
    model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig
) -> float:
    """Edges carrying at least one op over all edges."""
    space, genotype = _genotype_of(model)
    return space.edge_density(genotype)


def num_params(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Trainable parameters of the model as given."""
    return float(count_params(model))


def flops(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Multiply-adds of one forward pass of one image of this batch's size."""
    check_batch(images, labels)
    return float(count_flops(model, (1, *images.shape[1:])))


@dataclass(frozen=True)
class FlopTable:
    """FLOPs of a network = a fixed part + one term per active (layer, edge, op).

    Exact because only convolutions and matmuls are counted, and a cell's channel counts (hence
    its preprocessing and the classifier) do not depend on which ops are active.
    """

    fixed: int
    #: per layer, per (node, pred) edge key, the FLOPs of each op on that edge
    ops: tuple[dict[str, dict[str, int]], ...]

    def count(self, genotype: Genotype) -> int:
        total = self.fixed
        for layer, edges in enumerate(self.ops):
            for node, preds in enumerate(genotype.cell_for_layer(layer)):
                for pred, edge in enumerate(preds):
                    total += sum(edges[edge_key(node, pred)][op] for op in edge)
        return total // 2  # multiply-adds, as count_flops


@functools.lru_cache(maxsize=32)
def _flop_table(
    space: CellSpace, macro_key: tuple[tuple[str, Any], ...], dataset: str
) -> FlopTable:
    macro = dict(macro_key)
    info = dataset_info(dataset)
    with torch.device("meta"):
        net = build_supernet(space, macro, dataset)
    # every op on every edge active: one forward measures every op at its real input size
    everything = Genotype(
        space.name, (space.cell_from_edges([frozenset(space.ops)] * space.num_edges),)
    )
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, info.image_size, info.image_size, device="meta"), everything)
    counts = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
    root = type(net).__name__
    dags = [name for name, m in net.named_modules() if isinstance(m, CellDAG)]
    table = tuple(
        {
            edge_key(node, pred): {
                op: int(counts.get(f"{root}.{dag}.edges.{edge_key(node, pred)}.{op}", 0))
                for op in space.ops
            }
            for node in range(space.nodes)
            for pred in range(space.inputs + node)
        }
        for dag in dags
    )
    ops_total = sum(f for edges in table for per_op in edges.values() for f in per_op.values())
    return FlopTable(int(counts["Global"]) - ops_total, table)


def genotype_flops(
    space: CellSpace, genotype: Genotype, macro: dict[str, Any], dataset: str = "cifar10"
) -> int:
    """Multiply-adds per image of the network `genotype` builds at `macro`, without building it
    (a table measured once per space and size on the meta device)."""
    space.validate(genotype, macro)
    return _flop_table(space, tuple(sorted(macro.items())), dataset).count(genotype)


def genotype_structure(
    space: CellSpace, genotype: Genotype, macro: dict[str, Any], dataset: str = "cifar10"
) -> dict[str, float]:
    """density, edge_density, num_params and flops of `genotype` at macro size `macro`."""
    return {
        "density": space.density(genotype),
        "edge_density": space.edge_density(genotype),
        "num_params": float(sizing.num_params(space, genotype, macro, dataset)),
        "flops": float(genotype_flops(space, genotype, macro, dataset)),
    }
