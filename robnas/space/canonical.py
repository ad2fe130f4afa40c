"""Canonical forms: one string per isomorphism class of cells, so a class is queried once.

Two genotypes in the same class compute the same function (up to relabelling), so evaluating the
second one is a cache hit, for every strategy. The form depends on the macro family:

- nb201 (one input, output = last node, every op stride 1): NAS-Bench-201's
  `to_unique_str(consider_zero=True)`. Each node is the sorted sum of its incoming terms,
  `(x)@op` for an op on input x, x itself for skip_connect, `#` for no op or a zero input; the
  cell is its last node. Dead nodes vanish and skip chains collapse. This reproduces the NB201
  robustness dataset's 6,466 isomorph classes exactly (tested).
- darts (two fixed inputs, output = concat of all nodes): graph isomorphism under relabelling the
  intermediate nodes. Edges leaving a zero node (a node with no active incoming edge, after
  this rule is applied to its predecessors) are dropped, as they carry zeros; then the cell is
  written in every node order that keeps edges pointing forward and the smallest string is the
  form. The concat's channel order does not matter (the next 1x1 convolution or the linear
  classifier absorbs a permutation). skip_connect is not an identity here: on an input edge of
  a reduction cell it is a FactorizedReduce with weights.

Isomorphs may differ in parameter count (dead ops still hold weights), so a budget is checked per
genotype, never per class.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from typing import TYPE_CHECKING

from robnas.genotype import Cell, Genotype, cell_to_str

if TYPE_CHECKING:
    from robnas.space.cell import CellSpace

ZERO = "#"


def nb201_cell_form(cell: Cell, inputs: int = 1, output: str = "last") -> str:
    """NAS-Bench-201's `to_unique_str(consider_zero=True)` of one cell (inputs named 0..); a
    concat output lists every node's form in order."""
    nodes = [str(i) for i in range(inputs)]
    for node in cell:
        terms = []
        for j, edge in enumerate(node):
            if not edge or nodes[j] == ZERO:
                terms.append(ZERO)
                continue
            for op in sorted(edge):
                terms.append(nodes[j] if op == "skip_connect" else f"({nodes[j]})@{op}")
        nodes.append("+".join(sorted(terms)))
    return "|".join(nodes[inputs:]) if output == "concat" else nodes[-1]


def drop_dead_edges(cell: Cell, inputs: int) -> Cell:
    """Clear the edges that leave zero nodes (nodes whose every incoming edge is empty)."""
    zero = [False] * inputs
    out = []
    for node in cell:
        kept = tuple(frozenset() if zero[j] else edge for j, edge in enumerate(node))
        zero.append(not any(kept))
        out.append(kept)
    return tuple(out)


def relabel(cell: Cell, inputs: int, order: tuple[int, ...]) -> Cell | None:
    """The cell with intermediate node order[k] placed at position k (None if an edge would
    point backwards)."""
    position = {old: new for new, old in enumerate(order)}
    nodes = []
    for old in order:
        edges = [frozenset[str]() for _ in range(inputs + position[old])]
        for j, edge in enumerate(cell[old]):
            if not edge:
                continue
            if j < inputs:
                edges[j] = edge
            elif position[j - inputs] < position[old]:
                edges[inputs + position[j - inputs]] = edge
            else:
                return None
        nodes.append(tuple(edges))
    return tuple(nodes)


def darts_cell_form(cell: Cell, inputs: int) -> str:
    """The smallest string of the cell over every forward-pointing node order, dead edges dropped."""
    live = drop_dead_edges(cell, inputs)
    forms = (
        cell_to_str(relabelled)
        for order in itertools.permutations(range(len(live)))
        if (relabelled := relabel(live, inputs, order)) is not None
    )
    return min(forms)  # the identity order is always valid


@functools.lru_cache(maxsize=1 << 16)
def canonical_form(space: CellSpace, genotype: Genotype) -> str:
    """One string per isomorphism class (cells of a cell-free genotype each canonicalized)."""
    if space.family == "nb201":
        forms = [nb201_cell_form(c, space.inputs, space.output) for c in genotype.cells]
    else:
        forms = [darts_cell_form(cell, space.inputs) for cell in genotype.cells]
    return ";".join(forms)


def canonical_key(space: CellSpace, genotype: Genotype) -> str:
    """A short stable key of the class (SHA-1 of space name and form), for storage."""
    text = f"{space.name}:{canonical_form(space, genotype)}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]
