"""The network a space's genotype names, and a cell space's weight-sharing supernet.

    build(space, genotype, macro=None, dataset="cifar10")   # any space kind
    build_supernet(space, macro=None, dataset="cifar10")    # cell spaces
    macro_config(space, genotype, macro=None)               # a macro genotype's MacroConfig

`macro` is the size (`space.resolve_size(...)`; None: the space's default `[macro]`); `dataset`
gives the classes and the normalisation the network starts with. Spaces hold no networks: this
is the one place a genotype becomes a module (robnas.models.sizing counts its parameters).
"""

from __future__ import annotations

import math
from typing import Any, cast

from torch import nn

from robnas.data.datasets import dataset_info
from robnas.errors import InvalidSpace
from robnas.genotype import Genotype
from robnas.models.network import FAMILIES
from robnas.models.robust_resnet import PLAIN_BOTTLENECK, ROBUST_BLOCK
from robnas.models.wrn import MacroConfig, build_macro
from robnas.space.cell import CellSpace
from robnas.space.macro import MacroSpace
from robnas.space.search_space import SearchSpace, cell_space


def build(
    space: SearchSpace,
    genotype: Genotype,
    macro: dict[str, Any] | None = None,
    dataset: str = "cifar10",
) -> nn.Module:
    """The network of `genotype` (validated against `space` at this size), taking [0,1] images."""
    if isinstance(space, MacroSpace):
        info = dataset_info(dataset)
        config = macro_config(space, genotype, macro)
        return build_macro(config, info.num_classes, info.mean, info.std)
    cells, m = cell_size(space, macro)
    cells.validate(genotype, m)
    return _cell_network(cells, m, genotype, dataset)


def build_supernet(
    space: SearchSpace, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
) -> nn.Module:
    """Every op of every edge built once; `forward(x, genotype)` runs one path (cell spaces)."""
    cells, m = cell_size(space, macro)
    return _cell_network(cells, m, None, dataset)


def cell_size(space: SearchSpace, macro: dict[str, Any] | None) -> tuple[CellSpace, dict[str, Any]]:
    """The cell space (a macro space is refused) and its size (None: the default `[macro]`)."""
    cells = cell_space(space)
    return cells, cells.resolve_macro() if macro is None else macro


def _cell_network(
    space: CellSpace, macro: dict[str, Any], genotype: Genotype | None, dataset: str
) -> nn.Module:
    info = dataset_info(dataset)
    return FAMILIES[space.family](space, macro, genotype, info.num_classes, info.mean, info.std)


def macro_config(
    space: MacroSpace, genotype: Genotype, macro: dict[str, Any] | None = None
) -> MacroConfig:
    """The MacroConfig of `genotype` at a size (default: deployed): each stage's depth scaled by
    `depth_scale`, its channels `base_channels[i] * width[i]`."""
    g = space.validate(genotype)
    m = space.resolve_macro() if macro is None else macro
    scale = float(m["depth_scale"])
    base = tuple(int(c) for c in m["base_channels"])
    if len(base) != space.stages:
        raise InvalidSpace(f"{space.name}: base_channels needs {space.stages} entries, got {base}")
    depths = tuple(max(1, round(d * scale)) for d in g.depths)
    base_width = None
    if g.block in ("bottleneck", "robust"):
        # a proxy's narrow stages would leave hierarchical slices empty: widen the slices
        default = cast(
            int, (ROBUST_BLOCK if g.block == "robust" else PLAIN_BOTTLENECK)["base_width"]
        )
        narrowest = min(c * w for c, w in zip(base, g.widths, strict=True))
        need = math.ceil(160 / narrowest)
        base_width = need if need > default else None
    return MacroConfig(
        depths,
        g.widths,
        block=g.block,
        activation=g.activation,
        se=g.se,
        base_width=base_width,
        stem=int(m["stem"]),
        base_channels=base,
    )


__all__ = ["build", "build_supernet", "macro_config"]
