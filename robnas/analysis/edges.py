"""Per-edge features of genotypes: edge names and where the convolutions are."""

from __future__ import annotations

import numpy as np

from robnas.genotype import Genotype
from robnas.space.cell import CellSpace

__all__ = ["conv_edge_matrix", "edge_labels"]


def edge_labels(space: CellSpace) -> list[tuple[str, bool]]:
    """(`j→k` label, edge leaves a cell input) per edge; inputs are nodes 0..inputs-1."""
    return [
        (f"{j}→{i + space.inputs}", j < space.inputs)
        for i in range(space.nodes)
        for j in range(space.inputs + i)
    ]


def conv_edge_matrix(space: CellSpace, genotypes: list[Genotype]) -> np.ndarray:
    """(n, edges): the share of a genotype's cells holding a convolution on each edge (0/1 if shared)."""
    convs = {op for op in space.ops if "conv" in op}
    return np.array(
        [
            np.mean(
                [[bool(edge & convs) for edge in g.edges(c)] for c in range(len(g.cells))], axis=0
            )
            for g in genotypes
        ],
        dtype=float,
    ).reshape(len(genotypes), space.num_edges)
