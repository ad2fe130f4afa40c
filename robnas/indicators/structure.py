"""Structural indicators: density, edge density, parameters and FLOPs.

As indicators they read the genotype a network was built from (`model.genotype`, set by
`space.build` and `supernet.extract`); the evaluators call `genotype_structure` directly, which
measures parameters and FLOPs at a given macro size (the final network's) without building it
for real: FLOPs come from a network built on the meta device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from robnas.errors import ConfigError, RobnasError
from robnas.genotype import Genotype
from robnas.indicators.base import IndicatorConfig, check_batch
from robnas.indicators.complexity import count_flops, count_params

if TYPE_CHECKING:
    from robnas.space import SearchSpace

#: indicator names that depend only on the genotype and the macro size, not on weights
STRUCTURAL = ("density", "edge_density", "num_params", "flops")


def _genotype_of(model: nn.Module) -> tuple[SearchSpace, Genotype]:
    from robnas.space import SearchSpace, get_space

    # a network built from a genotype, or a Supernet with its path set
    genotype = getattr(model, "genotype", None) or getattr(model, "path", None)
    space = getattr(model, "space", None)
    if isinstance(genotype, Genotype) and isinstance(space, SearchSpace):
        return space, genotype
    name = getattr(model, "space_name", None)
    if not isinstance(genotype, Genotype) or not isinstance(name, str):
        raise ConfigError(
            f"{type(model).__name__} was not built from a genotype; density needs a network "
            "from space.build or supernet.extract, or a supernet with set_path(genotype)"
        )
    try:
        return get_space(name), genotype
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


def genotype_flops(
    space: SearchSpace, genotype: Genotype, macro: dict[str, Any], dataset: str = "cifar10"
) -> int:
    """Multiply-adds per image of the network `genotype` builds at `macro` (meta device, free)."""
    from robnas.data import dataset_info

    info = dataset_info(dataset)
    with torch.device("meta"):
        model = space.build(genotype, macro, dataset)
    return count_flops(model, (1, 3, info.image_size, info.image_size))


def genotype_structure(
    space: SearchSpace, genotype: Genotype, macro: dict[str, Any], dataset: str = "cifar10"
) -> dict[str, float]:
    """density, edge_density, num_params and flops of `genotype` at macro size `macro`."""
    return {
        "density": space.density(genotype),
        "edge_density": space.edge_density(genotype),
        "num_params": float(space.num_params(genotype, macro, dataset)),
        "flops": float(genotype_flops(space, genotype, macro, dataset)),
    }
