"""MacroSpace: a search space of whole networks (per-stage depth and width, block, activation, SE).

Read from a TOML file with `kind = "macro"` (search_spaces/wrn.toml). A genotype is a
`MacroGenotype` (`wrn:depths=4-4-2,widths=10-12-4,block=preact,act=silu,se=none`). A sibling
of the cell space: both implement the `SearchSpace` protocol (robnas/space/base.py) that
strategies, studies and the search pipeline use: `dimensions()` (a flat list of categorical
choices), `sample`, `mutate`, `neighbours`, `encode`/`decode`, `validate`, `parse`,
`canonical_key`.

Sizes ("macro" here, as for cell spaces): `stem`, `base_channels` and `depth_scale`. The default
`[macro]` is the deployed network (depth_scale 1: the genotype as named, which budgets bind);
a `[sizes.NAME]` table is a proxy the search trains candidates at: stage channels
`base_channels[i] * width[i]` with smaller base channels, each stage's depth
`max(1, round(depth * depth_scale))`. The network of a genotype at a size, and its exact cost
without building it, come from robnas.models (`robnas.models.builder.macro_config`,
`robnas.models.sizing.cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robnas.errors import InvalidGenotype, InvalidSpace
from robnas.genotype import MACRO_ACTIVATIONS, MACRO_BLOCKS, SE_MODES, Genotype, MacroGenotype
from robnas.space.base import Dimension, SizedSpace, read_sizes

MACRO_DEFAULTS: dict[str, Any] = {"stem": 16, "base_channels": [16, 32, 64], "depth_scale": 1.0}
GRID_KEYS = ("depths", "widths", "blocks", "activations", "se")
#: ordinal dimensions: mutation and neighbours move one grid step (categorical ones: any value)
ORDINAL = ("depth", "width")


class MacroSpace(SizedSpace):
    """A space of whole networks (the `SearchSpace` protocol): a grid of per-stage depths and
    widths, blocks, activations and SE modes."""

    kind = "macro"

    def __init__(self, data: dict[str, Any], source: str) -> None:  # noqa: PLR0912
        self.source = source
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidSpace(f"{source}: missing field 'name'")
        self.name = name
        self.description = str(data.get("description", ""))
        grid = data.get("grid")
        if not isinstance(grid, dict):
            raise InvalidSpace(f"{source}: a macro space needs a [grid] table")
        missing = [k for k in (*GRID_KEYS, "stages") if k not in grid]
        if missing:
            raise InvalidSpace(f"{source}: [grid] lacks {', '.join(missing)}")
        self.stages = int(grid["stages"])
        self.depths = tuple(int(d) for d in grid["depths"])
        self.widths = tuple(int(w) for w in grid["widths"])
        self.blocks = tuple(str(b) for b in grid["blocks"])
        self.activations = tuple(str(a) for a in grid["activations"])
        self.se_modes = tuple(str(s) for s in grid["se"])
        self._check_grid(source)
        macro = data.get("macro", {})
        self._check_keys(macro, "macro.")
        self.macro = {**MACRO_DEFAULTS, **macro}
        self.sizes = read_sizes(data, source)
        for size, values in self.sizes.items():
            self._check_keys(values, f"sizes.{size}.")

    def _check_grid(self, source: str) -> None:
        if self.stages < 1 or not self.depths or not self.widths:
            raise InvalidSpace(f"{source}: grid.stages, depths and widths must be non-empty")
        if min(self.depths) < 1 or min(self.widths) < 1:
            raise InvalidSpace(f"{source}: grid depths and widths must be >= 1")
        for key, values, known in (
            ("blocks", self.blocks, MACRO_BLOCKS),
            ("activations", self.activations, MACRO_ACTIVATIONS),
            ("se", self.se_modes, SE_MODES),
        ):
            bad = [v for v in values if v not in known]
            if bad or not values:
                raise InvalidSpace(
                    f"{source}: grid.{key} has {bad or 'nothing'}; known: {', '.join(known)}"
                )

    def _check_keys(self, values: dict[str, Any], where: str) -> None:
        for key in values:
            if key not in MACRO_DEFAULTS:
                raise InvalidSpace(
                    f"{self.source}: unknown field '{where}{key}'; known: "
                    f"{', '.join(sorted(MACRO_DEFAULTS))}"
                )

    # -- structure ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        per_stage = len(self.depths) * len(self.widths)
        return (
            per_stage**self.stages * len(self.blocks) * len(self.activations) * len(self.se_modes)
        )

    def describe(self) -> list[str]:
        """The choices, for `robnas spaces`."""

        def span(values: tuple[int, ...]) -> str:
            step = values == tuple(range(values[0], values[-1] + 1))
            return f"{values[0]}..{values[-1]}" if step else "/".join(map(str, values))

        return [
            f"depth {span(self.depths)} x{self.stages} stages",
            f"width {span(self.widths)} x{self.stages} stages",
            f"block {'/'.join(self.blocks)}",
            f"act {'/'.join(self.activations)}",
            f"se {'/'.join(self.se_modes)}",
        ]

    def dimensions(
        self, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> list[Dimension]:
        """depth0.., width0.., block, act, se: a fixed flat list of categorical choices."""
        dims = [Dimension(f"depth{i}", tuple(map(str, self.depths))) for i in range(self.stages)]
        dims += [Dimension(f"width{i}", tuple(map(str, self.widths))) for i in range(self.stages)]
        return [
            *dims,
            Dimension("block", self.blocks),
            Dimension("act", self.activations),
            Dimension("se", self.se_modes),
        ]

    def encode(self, genotype: Genotype) -> list[str]:
        g = self._macro(genotype)
        return [*map(str, g.depths), *map(str, g.widths), g.block, g.activation, g.se]

    def decode(self, values: Sequence[str]) -> Genotype:
        n = self.stages
        if len(values) != 2 * n + 3:
            raise InvalidGenotype(f"{len(values)} values; {self.name} has {2 * n + 3} dimensions")
        try:
            depths, widths = [int(v) for v in values[:n]], [int(v) for v in values[n : 2 * n]]
        except ValueError:
            raise InvalidGenotype(f"depths and widths must be integers, got {values}") from None
        block, act, se = (str(v) for v in values[2 * n :])
        return self.validate(MacroGenotype.make(self.name, depths, widths, block, act, se))

    # -- genotypes ---------------------------------------------------------------------------

    def _macro(self, genotype: Genotype) -> MacroGenotype:
        if not isinstance(genotype, MacroGenotype):
            raise InvalidGenotype(
                f"{genotype.to_str()!r} is a cell genotype; {self.name} genotypes look like "
                f"{self.name}:depths=4-4-2,widths=10-12-4,block=preact,act=relu,se=none"
            )
        return genotype

    def validate(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> MacroGenotype:
        g = self._macro(genotype)
        if g.space != self.name:
            raise InvalidGenotype(f"genotype belongs to space {g.space!r}, not {self.name!r}")
        if len(g.depths) != self.stages:
            raise InvalidGenotype(f"{len(g.depths)} stages; {self.name} has {self.stages}")
        checks = (
            ("depth", g.depths, self.depths),
            ("width", g.widths, self.widths),
            ("block", (g.block,), self.blocks),
            ("act", (g.activation,), self.activations),
            ("se", (g.se,), self.se_modes),
        )
        for what, values, grid in checks:
            bad = [v for v in values if v not in grid]
            if bad:
                raise InvalidGenotype(
                    f"{what} {bad[0]} is not in the {self.name} grid: {', '.join(map(str, grid))}"
                )
        return g

    def _parse_text(self, text: str) -> Genotype:
        """`wrn:depths=...` (the prefix may be left out); objects and JSON as for every space."""
        body = text.split(":", 1)[1] if ":" in text else text
        if ":" in text and text.split(":", 1)[0] != self.name:
            raise InvalidGenotype(f"genotype is of space {text.split(':')[0]!r}, not {self.name!r}")
        return self.validate(MacroGenotype.from_body(self.name, body))

    def _parse_codes(self, arch: Sequence[Any]) -> Genotype:
        raise InvalidGenotype(f"cannot read a {self.name} genotype from {arch!r}")

    def sample(
        self, rng: np.random.Generator, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> Genotype:
        """Uniform over the grid (every dimension independently)."""
        return self.decode(
            [str(d.choices[int(rng.integers(len(d.choices)))]) for d in self.dimensions()]
        )

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """One grid step of one stage's depth or width, or another block, activation or SE."""
        values = self.encode(genotype)
        out = []
        for i, dim in enumerate(self.dimensions()):
            k = dim.choices.index(values[i])
            if dim.name.rstrip("0123456789") in ORDINAL:
                others = [dim.choices[j] for j in (k - 1, k + 1) if 0 <= j < len(dim.choices)]
            else:
                others = [c for c in dim.choices if c != values[i]]
            for other in others:
                out.append(self.decode([*values[:i], other, *values[i + 1 :]]))
        return out

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """A uniformly chosen neighbour (one step of one choice)."""
        options = self.neighbours(genotype)
        return options[int(rng.integers(len(options)))]

    def canonical(self, genotype: Genotype) -> str:
        """Distinct macro genotypes are distinct networks: the string is the class."""
        return self.validate(genotype).to_str()

    def canonical_key(self, genotype: Genotype) -> str:
        return self.validate(genotype).key

    # -- costs -------------------------------------------------------------------------------

    def smallest(self) -> list[Genotype]:
        """The cheapest genotype of each block/SE/activation (costs grow with depth and width)."""
        lo_d, lo_w = [min(self.depths)] * self.stages, [min(self.widths)] * self.stages
        return [
            MacroGenotype.make(self.name, lo_d, lo_w, b, a, s)
            for b in self.blocks
            for a in self.activations
            for s in self.se_modes
        ]

    def __repr__(self) -> str:
        return f"MacroSpace({self.name!r}, {self.stages} stages, {self.size:,} networks)"
