"""Networks built from genotypes: the RobNet/DARTS macro and the NAS-Bench-201 macro.

Each cell keeps one module per (edge, op) it may run. A network built from a genotype holds only
that genotype's ops; the weight-sharing supernet is the same class built with every op
(`genotype=None`), and `forward(x, genotype)` runs only the active ops of the given path. So a
standalone network's state dict is a subset of the supernet's, key for key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.genotype import Cell, Genotype
from robnas.ops import FactorizedReduce, Normalize, ReLUConvBN, make_op

if TYPE_CHECKING:
    from robnas.space.cell import CellSpace


def edge_key(node: int, pred: int) -> str:
    return f"{node}_{pred}"


class CellDAG(nn.Module):
    """The searchable part of a cell: nodes summing ops over all their predecessors.

    `strides[k]` is the stride of the k-th edge (2 on input edges of a reduction cell). With
    `cell=None` every op of the space is built (supernet); otherwise only the active ones.
    """

    def __init__(
        self,
        space: CellSpace,
        channels: int,
        reduction: bool,
        affine: bool,
        cell: Cell | None,
    ) -> None:
        super().__init__()
        self.inputs = space.inputs
        self.output = space.output
        self.reduction = reduction
        self.channels = channels
        self.edges = nn.ModuleDict()
        for node in range(space.nodes):
            for pred in range(space.inputs + node):
                stride = 2 if reduction and pred < space.inputs else 1
                active = space.ops if cell is None else sorted(cell[node][pred])
                self.edges[edge_key(node, pred)] = nn.ModuleDict(
                    {op: make_op(op, channels, stride, affine) for op in active}
                )

    def forward(self, states: list[torch.Tensor], cell: Cell) -> torch.Tensor:
        states = list(states)
        n, _, h, w = states[0].shape
        if self.reduction:
            h, w = (h + 1) // 2, (w + 1) // 2
        for node, edges in enumerate(cell):
            terms = [
                self.edges[edge_key(node, pred)][op](states[pred])  # type: ignore[index]
                for pred, edge in enumerate(edges)
                for op in sorted(edge)
            ]
            # A node with no active edge is zero (RobNet's '00' code everywhere).
            states.append(
                sum(terms[1:], terms[0]) if terms else states[0].new_zeros(n, self.channels, h, w)
            )
        nodes = states[self.inputs :]
        return torch.cat(nodes, dim=1) if self.output == "concat" else nodes[-1]


class DartsCell(nn.Module):
    def __init__(
        self,
        space: CellSpace,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        affine: bool,
        cell: Cell | None,
    ) -> None:
        super().__init__()
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, channels, affine)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine)
        self.dag = CellDAG(space, channels, reduction, affine, cell)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: Cell) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        return self.dag(states, cell)


class CellNetwork(nn.Module, ABC):
    """What every macro family shares: its genotype (None for a supernet) and the input layer."""

    def __init__(
        self,
        space: CellSpace,
        macro: dict[str, Any],
        genotype: Genotype | None,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        self.space_name = space.name
        self.genotype = genotype
        self.normalize: nn.Module = Normalize(mean, std) if macro["normalize"] else nn.Identity()
        self.build_body(space, macro, num_classes)

    @abstractmethod
    def build_body(self, space: CellSpace, macro: dict[str, Any], num_classes: int) -> None:
        """The family's stem, cells and classifier (all ops when `self.genotype` is None)."""

    def cell_of(self, layer: int) -> Cell | None:
        """The cell this network holds at `layer` (None in a supernet: every op)."""
        return None if self.genotype is None else self.genotype.cell_for_layer(layer)


class DartsNetwork(CellNetwork):
    """RobNet's macro: stem, `layers` cells (reductions at layers//3, 2*layers//3), pool, linear."""

    def build_body(self, space: CellSpace, macro: dict[str, Any], num_classes: int) -> None:
        c, layers = int(macro["C"]), int(macro["layers"])
        affine = bool(macro.get("affine", False))
        c_curr = int(macro["stem_multiplier"]) * c
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, c
        reduction_prev = False
        self.cells = nn.ModuleList()
        for layer in range(layers):
            reduction = layer in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            cell = self.cell_of(layer)
            self.cells.append(
                DartsCell(
                    space, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, affine, cell
                )
            )
            reduction_prev = reduction
            width = space.nodes * c_curr if space.output == "concat" else c_curr
            c_prev_prev, c_prev = c_prev, width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, genotype: Genotype | None = None) -> torch.Tensor:
        g = _active(self.genotype, genotype)
        s0 = s1 = self.stem(self.normalize(x))
        for layer, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, g.cell_for_layer(layer))
        return self.classifier(torch.flatten(self.pool(s1), 1))


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: two 3x3 ReLU-conv-BN, avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    def __init__(self, space: CellSpace, channels: int, affine: bool, cell: Cell | None) -> None:
        super().__init__()
        self.dag = CellDAG(space, channels, False, affine, cell)

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        return self.dag([x], cell)


class NB201Network(CellNetwork):
    """NAS-Bench-201's macro: stem, 3 stages of N cells (C, 2C, 4C), BN-ReLU, pool, linear."""

    def build_body(self, space: CellSpace, macro: dict[str, Any], num_classes: int) -> None:
        c, n = int(macro["C"]), int(macro["N"])
        affine = bool(macro.get("affine", True))
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.stages = nn.ModuleList()
        self.reductions = nn.ModuleList()
        layer = 0
        for stage in range(3):
            width = c * 2**stage
            if stage:
                self.reductions.append(ResNetBasicBlock(width // 2, width, affine))
            cells = nn.ModuleList()
            for _ in range(n):
                cells.append(NB201Cell(space, width, affine, self.cell_of(layer)))
                layer += 1
            self.stages.append(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor, genotype: Genotype | None = None) -> torch.Tensor:
        g = _active(self.genotype, genotype)
        h = self.stem(self.normalize(x))
        layer = 0
        for stage, cells in enumerate(self.stages):
            if stage:
                h = self.reductions[stage - 1](h)
            for cell in cells:  # type: ignore[attr-defined]
                h = cell(h, g.cell_for_layer(layer))
                layer += 1
        return self.classifier(torch.flatten(self.pool(self.lastact(h)), 1))


def _active(own: Genotype | None, given: Genotype | None) -> Genotype:
    g = given if given is not None else own
    if g is None:
        raise ValueError("a supernet needs the genotype of the path to run: forward(x, genotype)")
    return g


def reduction_layers(layers: int) -> tuple[int, int]:
    return layers // 3, 2 * layers // 3


FAMILIES: dict[str, type[CellNetwork]] = {"darts": DartsNetwork, "nb201": NB201Network}
