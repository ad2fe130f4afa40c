"""Genotype: one point of a cell search space, as an immutable value with a canonical string.

A cell is a tuple of intermediate nodes; a node is a tuple of incoming edges, one per predecessor
(the cell's inputs first, then earlier nodes); an edge is the frozenset of op names active on it
(the empty set is the zero op, written `none`). Ops are names, never indices.

String form, NAS-Bench-201 style and exact for NB201 arch strings:
    node = |op~j|op~j|...|   (every predecessor j once as `none~j`, or once per active op)
    cell = node+node+...
    genotype = space:cell            (shared: one cell for every layer, "RobNet-large")
             | space:cell;cell;...   (cell-free: one cell per layer, "RobNet-free")
             | space:key=value,...   (a macro network, `MacroGenotype`: per-stage depths and
                                      widths, block, activation, SE; e.g.
                                      wrn:depths=4-4-2,widths=10-12-4,block=preact,act=silu,se=none)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from robnas.errors import InvalidGenotype

Edge = frozenset[str]
Node = tuple[Edge, ...]
Cell = tuple[Node, ...]

NONE = "none"


def edge_to_str(edge: Edge) -> str:
    """`none`, or the active op names joined by `&` in sorted order."""
    return "&".join(sorted(edge)) if edge else NONE


def edge_from_str(text: str) -> Edge:
    text = text.strip()
    if text in ("", NONE):
        return frozenset()
    ops = [op.strip() for op in text.split("&")]
    if any(not op or op == NONE for op in ops):
        raise InvalidGenotype(f"bad edge {text!r}: write op names joined by '&', or 'none'")
    return frozenset(ops)


def cell_to_str(cell: Cell) -> str:
    nodes = []
    for node in cell:
        parts: list[str] = []
        for j, edge in enumerate(node):
            ops = sorted(edge) if edge else [NONE]
            parts.extend(f"{op}~{j}" for op in ops)
        nodes.append("|" + "|".join(parts) + "|")
    return "+".join(nodes)


def cell_from_str(text: str) -> Cell:
    text = text.strip()
    nodes: list[Node] = []
    for k, node_text in enumerate(text.split("+")):
        node_text = node_text.strip()
        if not (node_text.startswith("|") and node_text.endswith("|")) or len(node_text) < 3:
            raise InvalidGenotype(
                f"node {k} of cell {text!r} must look like |op~0|op~1|; got {node_text!r}"
            )
        edges: dict[int, set[str]] = {}
        for item in node_text[1:-1].split("|"):
            op, sep, j_text = item.partition("~")
            if not sep or not op or not j_text.isdigit():
                raise InvalidGenotype(f"bad entry {item!r} in node {k}: expected op~input_index")
            ops = edges.setdefault(int(j_text), set())
            if op != NONE:
                ops.add(op)
        if sorted(edges) != list(range(len(edges))):
            raise InvalidGenotype(
                f"node {k} lists inputs {sorted(edges)}; every input 0..n-1 must appear"
            )
        nodes.append(tuple(frozenset(edges[j]) for j in range(len(edges))))
    return tuple(nodes)


@dataclass(frozen=True)
class Genotype:
    """An architecture of a search space: `cells` holds one cell (shared) or one per layer (free)."""

    space: str
    cells: tuple[Cell, ...]

    def __post_init__(self) -> None:
        if not self.cells:
            raise InvalidGenotype("a genotype needs at least one cell")
        # Normalise nested sequences so equal genotypes compare and hash equal.
        cells = tuple(tuple(tuple(frozenset(e) for e in node) for node in c) for c in self.cells)
        object.__setattr__(self, "cells", cells)

    @property
    def shared(self) -> bool:
        return len(self.cells) == 1

    def edges(self, cell: int = 0) -> list[Edge]:
        """The edges of one cell, node by node, in canonical order."""
        return [edge for node in self.cells[cell] for edge in node]

    def cell_for_layer(self, layer: int) -> Cell:
        return self.cells[0] if self.shared else self.cells[layer]

    def to_str(self) -> str:
        return f"{self.space}:" + ";".join(cell_to_str(c) for c in self.cells)

    def __str__(self) -> str:
        return self.to_str()

    @classmethod
    def from_str(cls, text: str, space: str | None = None) -> Genotype:
        """Parse `space:cell[;cell…]`, or a bare cell string (e.g. an NB201 arch string) with `space`."""
        text = text.strip()
        name, sep, body = text.partition(":")
        if sep and not name.startswith("|"):
            if space is not None and name != space:
                raise InvalidGenotype(f"genotype is of space {name!r}, expected {space!r}")
            space = name
        else:
            body = text
        if space is None:
            raise InvalidGenotype(f"cannot tell the space of {text!r}: prefix it with 'space:'")
        if "=" in body and "|" not in body:
            return MacroGenotype.from_body(space, body)
        return cls(space, tuple(cell_from_str(c) for c in body.split(";")))

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "cells": [cell_to_str(c) for c in self.cells]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        if isinstance(data, dict) and "macro" in data:
            return MacroGenotype.from_macro_dict(data)
        try:
            space, cells = data["space"], data["cells"]
        except (KeyError, TypeError):
            raise InvalidGenotype("a genotype JSON needs the keys 'space' and 'cells'") from None
        return cls(space, tuple(cell_from_str(c) for c in cells))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @property
    def key(self) -> str:
        """A short stable key (SHA-1 of the canonical string), for file names and storage."""
        return hashlib.sha1(self.to_str().encode()).hexdigest()[:16]

    @classmethod
    def from_codes(
        cls, space: str, codes: Sequence[Sequence[str]], ops: Sequence[str], inputs: int
    ) -> Genotype:
        """RobNet's bit codes: per cell, one string per edge, bit k set = ops[k] active."""
        cells = []
        for c, cell_codes in enumerate(codes):
            edges: list[Edge] = []
            for e, code in enumerate(cell_codes):
                if len(code) != len(ops) or set(code) - {"0", "1"}:
                    raise InvalidGenotype(
                        f"cell {c} edge {e}: code {code!r} must be {len(ops)} bits over {list(ops)}"
                    )
                edges.append(frozenset(op for op, bit in zip(ops, code) if bit == "1"))
            cells.append(split_nodes(edges, inputs, where=f"cell {c}"))
        return cls(space, tuple(cells))

    def to_codes(self, ops: Sequence[str]) -> list[list[str]]:
        return [
            ["".join("1" if op in edge else "0" for op in ops) for node in c for edge in node]
            for c in self.cells
        ]


def split_nodes(edges: Iterable[Edge], inputs: int, where: str = "cell") -> Cell:
    """Group a flat edge list into nodes: node i takes one edge from each of its inputs+i predecessors."""
    flat = list(edges)
    nodes: list[Node] = []
    start, width = 0, inputs
    while start < len(flat):
        if start + width > len(flat):
            raise InvalidGenotype(
                f"{where}: {len(flat)} edges do not fill whole nodes with {inputs} inputs"
            )
        nodes.append(tuple(flat[start : start + width]))
        start, width = start + width, width + 1
    return tuple(nodes)


MACRO_KEYS = ("depths", "widths", "block", "act", "se")
#: The values a macro genotype's block, act and se may name (the networks in robnas.models build
#: each one; a macro space's grid picks among them).
MACRO_BLOCKS = ("basic", "preact", "bottleneck", "robust")
MACRO_ACTIVATIONS = ("relu", "silu", "softplus", "hswish", "relu6")
SE_MODES = ("none", "standard", "residual")


@dataclass(frozen=True)
class MacroGenotype(Genotype):
    """One macro network of a macro space (e.g. `wrn`): per-stage depths (blocks) and widening
    factors, block type, activation and SE mode. `cells` is a placeholder (one empty cell), so
    the value travels through every API that takes a Genotype; its string is the readable form
    `space:depths=4-4-2,widths=10-12-4,block=preact,act=silu,se=none` (keys in any order when
    parsed, this order when written)."""

    depths: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()
    block: str = "preact"
    activation: str = "relu"
    se: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.depths or len(self.depths) != len(self.widths):
            raise InvalidGenotype(
                f"a macro genotype needs one depth and one width per stage, got "
                f"{list(self.depths)} and {list(self.widths)}"
            )

    @classmethod
    def make(
        cls,
        space: str,
        depths: Sequence[int],
        widths: Sequence[int],
        block: str = "preact",
        activation: str = "relu",
        se: str = "none",
    ) -> MacroGenotype:
        return cls(space, ((),), tuple(depths), tuple(widths), block, activation, se)

    def choices(self) -> dict[str, Any]:
        """The choices as MacroConfig keys (depths, widths, block, activation, se)."""
        return {
            "depths": list(self.depths),
            "widths": list(self.widths),
            "block": self.block,
            "activation": self.activation,
            "se": self.se,
        }

    def to_str(self) -> str:
        return (
            f"{self.space}:depths={'-'.join(map(str, self.depths))},"
            f"widths={'-'.join(map(str, self.widths))},block={self.block},"
            f"act={self.activation},se={self.se}"
        )

    @classmethod
    def from_body(cls, space: str, body: str) -> MacroGenotype:
        values: dict[str, str] = {}
        for part in body.split(","):
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep or key not in MACRO_KEYS or not value or key in values:
                raise InvalidGenotype(
                    f"bad macro genotype {body!r}: write {','.join(k + '=...' for k in MACRO_KEYS)}"
                    " once each, e.g. depths=4-4-2,widths=10-12-4,block=preact,act=relu,se=none"
                )
            values[key] = value
        missing = [k for k in MACRO_KEYS if k not in values]
        if missing:
            raise InvalidGenotype(f"macro genotype {body!r} lacks {', '.join(missing)}")
        try:
            depths = [int(d) for d in values["depths"].split("-")]
            widths = [int(w) for w in values["widths"].split("-")]
        except ValueError:
            raise InvalidGenotype(
                f"depths and widths are integers joined by '-', got {values['depths']!r}, "
                f"{values['widths']!r}"
            ) from None
        return cls.make(space, depths, widths, values["block"], values["act"], values["se"])

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "macro": self.choices()}

    @classmethod
    def from_macro_dict(cls, data: dict[str, Any]) -> MacroGenotype:
        try:
            space, m = data["space"], dict(data["macro"])
            return cls.make(space, m["depths"], m["widths"], m["block"], m["activation"], m["se"])
        except (KeyError, TypeError, ValueError):
            raise InvalidGenotype(
                "a macro genotype JSON needs 'space' and 'macro' with depths, widths, block, "
                "activation and se"
            ) from None
