"""CellSpace: a cell space read from TOML (darts, nb201): sampling, mutation, encoding, canonical
forms. Networks of its genotypes are built in robnas.models (`robnas.models.build`)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from robnas.errors import InvalidGenotype, InvalidSpace
from robnas.genotype import NONE, Cell, Edge, Genotype, edge_from_str, edge_to_str, split_nodes
from robnas.ops import OPS
from robnas.space import canonical
from robnas.space.base import Dimension, SizedSpace, read_sizes

# Macro keys each network family understands, with their defaults when a space omits them.
FAMILY_MACRO: dict[str, dict[str, Any]] = {
    "darts": {"C": 36, "layers": 20, "stem_multiplier": 3, "normalize": False, "affine": False},
    "nb201": {"C": 16, "N": 5, "normalize": True, "affine": True},
}
FAMILY_INPUTS = {"darts": 2, "nb201": 1}


class CellSpace(SizedSpace):
    """A space of cells (the `SearchSpace` protocol): one shared cell, or one per layer."""

    kind = "cell"

    def __init__(self, data: dict[str, Any], source: str) -> None:
        def need(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
            if key not in table:
                raise InvalidSpace(f"{source}: missing field '{where}{key}'")
            value = table[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                raise InvalidSpace(
                    f"{source}: field '{where}{key}' must be {kind.__name__}, got {value!r}"
                )
            return value

        self.source = source
        self.name: str = need(data, "name", str, "")
        self.description: str = data.get("description", "")
        cell = need(data, "cell", dict, "")
        self.inputs: int = need(cell, "inputs", int, "cell.")
        self.nodes: int = need(cell, "nodes", int, "cell.")
        self.edge_kind: str = need(cell, "edge", str, "cell.")
        ops = need(cell, "ops", list, "cell.")
        self.output: str = cell.get("output", "concat")
        macro = need(data, "macro", dict, "")
        self.family: str = need(macro, "family", str, "macro.")

        if self.inputs < 1 or self.nodes < 1:
            raise InvalidSpace(f"{source}: cell.inputs and cell.nodes must be at least 1")
        if self.edge_kind not in ("subset", "choice"):
            raise InvalidSpace(
                f"{source}: cell.edge must be 'subset' or 'choice', got {self.edge_kind!r}"
            )
        if self.output not in ("concat", "last"):
            raise InvalidSpace(
                f"{source}: cell.output must be 'concat' or 'last', got {self.output!r}"
            )
        for op in ops:
            if op != NONE and op not in OPS:
                raise InvalidSpace(
                    f"{source}: cell.ops has unknown op {op!r}; known: {', '.join(OPS.names())}"
                )
        if NONE in ops and self.edge_kind == "subset":
            raise InvalidSpace(
                f"{source}: cell.ops must not list 'none' for subset edges (the empty set is none)"
            )
        if len(set(ops)) != len(ops) or not [op for op in ops if op != NONE]:
            raise InvalidSpace(f"{source}: cell.ops must be distinct and name at least one op")
        if self.family not in FAMILY_MACRO:
            raise InvalidSpace(
                f"{source}: macro.family must be one of {sorted(FAMILY_MACRO)}, got {self.family!r}"
            )
        if self.inputs != FAMILY_INPUTS[self.family]:
            raise InvalidSpace(
                f"{source}: macro.family {self.family!r} needs cell.inputs = {FAMILY_INPUTS[self.family]}"
            )
        #: Op names that can be active on an edge ('none' is the empty set, never listed here).
        self.ops: tuple[str, ...] = tuple(op for op in ops if op != NONE)
        self.allows_none = self.edge_kind == "subset" or NONE in ops
        self.macro: dict[str, Any] = {**FAMILY_MACRO[self.family], **macro}
        self.macro.pop("family")
        self._check_macro_keys(macro, "macro.")
        self.sizes: dict[str, dict[str, Any]] = read_sizes(data, source)
        for size, values in self.sizes.items():
            self._check_macro_keys(values, f"sizes.{size}.")

    def _check_macro_keys(self, values: dict[str, Any], where: str) -> None:
        known = set(FAMILY_MACRO[self.family]) | {"family"}
        for key in values:
            if key not in known:
                raise InvalidSpace(
                    f"{self.source}: unknown field '{where}{key}'; known: {', '.join(sorted(known))}"
                )

    # -- structure ---------------------------------------------------------------------------

    @property
    def num_edges(self) -> int:
        return sum(self.inputs + i for i in range(self.nodes))

    @functools.cached_property
    def edge_choices(self) -> tuple[Edge, ...]:
        """Every op set an edge may hold: none (if allowed), single ops, then larger subsets."""
        choices: list[Edge] = [frozenset()] if self.allows_none else []
        sizes = range(1, len(self.ops) + 1) if self.edge_kind == "subset" else [1]
        for size in sizes:
            choices.extend(frozenset(c) for c in itertools.combinations(self.ops, size))
        return tuple(choices)

    @property
    def size(self) -> int:
        """The number of distinct cells."""
        return len(self.edge_choices) ** self.num_edges

    def describe(self) -> list[str]:
        """The ops an edge may hold, for `robnas spaces`."""
        return list(self.ops)

    def num_layers(self, macro: dict[str, Any] | None = None) -> int:
        """Cells in the network: a cell-free genotype has this many cells."""
        m = self.resolve_macro() if macro is None else macro
        return int(m["layers"]) if self.family == "darts" else 3 * int(m["N"])

    # -- genotypes ---------------------------------------------------------------------------

    def validate(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> Genotype:
        if genotype.space != self.name:
            raise InvalidGenotype(
                f"genotype belongs to space {genotype.space!r}, not {self.name!r}"
            )
        # The cell count of a cell-free genotype depends on the macro size, checked when given.
        layers = self.num_layers(macro) if macro is not None else len(genotype.cells)
        if len(genotype.cells) not in (1, layers):
            raise InvalidGenotype(
                f"{len(genotype.cells)} cells: a {self.name} genotype has 1 shared cell or {layers} (one per layer)"
            )
        for c, cell in enumerate(genotype.cells):
            if len(cell) != self.nodes:
                raise InvalidGenotype(
                    f"cell {c} has {len(cell)} nodes; {self.name} cells have {self.nodes}"
                )
            for i, node in enumerate(cell):
                if len(node) != self.inputs + i:
                    raise InvalidGenotype(
                        f"cell {c} node {i} has {len(node)} inputs; it needs {self.inputs + i}"
                    )
                for j, edge in enumerate(node):
                    for op in edge:
                        if op not in self.ops:
                            raise InvalidGenotype(
                                f"cell {c} node {i} edge from {j}: unknown op {op!r}; ops: {', '.join(self.ops)}"
                            )
                    if edge not in self.edge_choices:
                        raise InvalidGenotype(
                            f"cell {c} node {i} edge from {j}: {edge_to_str(edge)!r} is not allowed ({self.edge_kind} edges)"
                        )
        return genotype

    def _parse_text(self, text: str) -> Genotype:
        """`space:cell` strings (one cell, or one per layer joined by ';'), or RobNet's 2-bit
        edge codes as text (`11,01,...;...`)."""
        if "|" in text or ":" in text:
            return self.validate(Genotype.from_str(text, self.name))
        return self._parse_codes([cell.split(",") for cell in text.split(";")])

    def _parse_codes(self, arch: Sequence[Any]) -> Genotype:
        """RobNet's 2-bit edge codes: one flat list (one cell) or one list per cell."""
        codes = [list(cell) if not isinstance(cell, str) else [cell] for cell in arch]
        if codes and all(len(c) == 1 for c in codes):  # one flat list of codes = one cell
            codes = [[c[0] for c in codes]]
        return self.validate(Genotype.from_codes(self.name, codes, self.ops, self.inputs))

    def cell_from_edges(self, edges: Sequence[Edge]) -> Cell:
        if len(edges) != self.num_edges:
            raise InvalidGenotype(
                f"{len(edges)} edges given; {self.name} cells have {self.num_edges}"
            )
        return split_nodes(edges, self.inputs)

    def sample(
        self, rng: np.random.Generator, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> Genotype:
        """Uniform over the space (each edge uniform over its choices, as RobNet samples)."""
        cells = self.num_layers(macro) if free else 1
        choices = self.edge_choices
        return Genotype(
            self.name,
            tuple(
                self.cell_from_edges(
                    [choices[i] for i in rng.integers(len(choices), size=self.num_edges)]
                )
                for _ in range(cells)
            ),
        )

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """Change the op set of one uniformly chosen edge of one cell to a different choice."""
        c = int(rng.integers(len(genotype.cells)))
        e = int(rng.integers(self.num_edges))
        edges = genotype.edges(c)
        others = [ch for ch in self.edge_choices if ch != edges[e]]
        edges[e] = others[int(rng.integers(len(others)))]
        return self._replace_cell(genotype, c, edges)

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """All genotypes that differ in exactly one edge of one cell."""
        result = []
        for c in range(len(genotype.cells)):
            for e, current in enumerate(genotype.edges(c)):
                for choice in self.edge_choices:
                    if choice != current:
                        edges = genotype.edges(c)
                        edges[e] = choice
                        result.append(self._replace_cell(genotype, c, edges))
        return result

    def _replace_cell(self, genotype: Genotype, c: int, edges: list[Edge]) -> Genotype:
        cells = list(genotype.cells)
        cells[c] = self.cell_from_edges(edges)
        return Genotype(self.name, tuple(cells))

    # -- isomorphism -------------------------------------------------------------------------

    def canonical(self, genotype: Genotype) -> str:
        """One string per isomorphism class: a query is the first evaluation of a class."""
        return canonical.canonical_form(self, genotype)

    def canonical_key(self, genotype: Genotype) -> str:
        """A short stable key of the isomorphism class (for storage and caches)."""
        return canonical.canonical_key(self, genotype)

    # -- flat encodings ----------------------------------------------------------------------

    def dimensions(
        self, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> list[Dimension]:
        """A fixed flat list of categorical choices (no conditionals), one per edge per cell."""
        cells = self.num_layers(macro) if free else 1
        labels = tuple(edge_to_str(ch) for ch in self.edge_choices)
        names = [f"n{i}_{j}" for i in range(self.nodes) for j in range(self.inputs + i)]
        return [
            Dimension(f"c{c}_{name}" if free else name, labels)
            for c in range(cells)
            for name in names
        ]

    def encode(self, genotype: Genotype) -> list[str]:
        return [edge_to_str(edge) for c in range(len(genotype.cells)) for edge in genotype.edges(c)]

    def decode(self, values: Sequence[str]) -> Genotype:
        if len(values) % self.num_edges:
            raise InvalidGenotype(
                f"{len(values)} values do not split into cells of {self.num_edges} edges"
            )
        edges = [edge_from_str(v) for v in values]
        cells = tuple(
            self.cell_from_edges(edges[i : i + self.num_edges])
            for i in range(0, len(edges), self.num_edges)
        )
        return self.validate(Genotype(self.name, cells))

    def onehot(self, genotype: Genotype) -> np.ndarray:
        """0/1 vector over (cell, edge, op): the numeric encoding for surrogates and regressions."""
        return np.array(
            [
                op in edge
                for c in range(len(genotype.cells))
                for edge in genotype.edges(c)
                for op in self.ops
            ],
            dtype=np.float32,
        )

    def density(self, genotype: Genotype) -> float:
        """Active (edge, op) pairs over all (edge, op) pairs, averaged over the cells."""
        return float(self.onehot(genotype).mean())

    def edge_density(self, genotype: Genotype) -> float:
        """Edges with at least one active op over all edges, averaged over the cells."""
        edges = [bool(e) for c in range(len(genotype.cells)) for e in genotype.edges(c)]
        return float(np.mean(edges))

    def __repr__(self) -> str:
        return f"CellSpace({self.name!r}, {self.num_edges} edges, ops={list(self.ops)})"
