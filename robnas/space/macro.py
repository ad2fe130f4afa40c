"""MacroSpace: a search space of whole networks (per-stage depth and width, block, activation, SE).

Read from a TOML file with `kind = "macro"` (search_spaces/wrn.toml). A genotype is a
`MacroGenotype` (`wrn:depths=4-4-2,widths=10-12-4,block=preact,act=silu,se=none`); the space
offers what strategies use of a cell space: `dimensions()` (a flat list of categorical choices),
`sample`, `mutate`, `neighbours`, `encode`/`decode`, `validate`, `parse`, `num_params`,
`min_params`, `canonical_key`.

Sizes ("macro" here, as for cell spaces): `stem`, `base_channels` and `depth_scale`. The default
`[macro]` is the deployed network (depth_scale 1: the genotype as named, which budgets bind);
a `[sizes.NAME]` table is a proxy the search trains candidates at: stage channels
`base_channels[i] * width[i]` with smaller base channels, each stage's depth
`max(1, round(depth * depth_scale))`. Costs come from `macro_cost` (exact, no network built).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from robnas.errors import InvalidGenotype, InvalidSpace
from robnas.genotype import Genotype, MacroGenotype
from robnas.space.search_space import SPACE_KINDS, Dimension, SearchSpace, read_sizes

if TYPE_CHECKING:
    from torch import nn

    from robnas.models.scaling import Cost
    from robnas.models.wrn import MacroConfig

MACRO_DEFAULTS: dict[str, Any] = {"stem": 16, "base_channels": [16, 32, 64], "depth_scale": 1.0}
GRID_KEYS = ("depths", "widths", "blocks", "activations", "se")
#: ordinal dimensions: mutation and neighbours move one grid step (categorical ones: any value)
ORDINAL = ("depth", "width")


class MacroSpace(SearchSpace):
    """A macro space; a SearchSpace so every API typed for spaces takes it (cell-only parts,
    e.g. the supernet, refuse with a one-line error)."""

    kind = "macro"

    def __init__(self, data: dict[str, Any], source: str) -> None:  # noqa: PLR0912
        self.source = source
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidSpace(f"{source}: missing field 'name'")
        self.name = name
        self.description = str(data.get("description", ""))
        self.family = "macro"
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
        # cell-space attributes read by generic code (listings); a macro space has no cell
        self.inputs, self.nodes, self.edge_kind, self.output = 0, 0, "macro", "none"
        self.ops: tuple[str, ...] = ()
        self.allows_none = False

    def _check_grid(self, source: str) -> None:
        from robnas.models.layers import ACTIVATIONS, SE_MODES
        from robnas.models.wrn import BLOCKS

        if self.stages < 1 or not self.depths or not self.widths:
            raise InvalidSpace(f"{source}: grid.stages, depths and widths must be non-empty")
        if min(self.depths) < 1 or min(self.widths) < 1:
            raise InvalidSpace(f"{source}: grid depths and widths must be >= 1")
        for key, values, known in (
            ("blocks", self.blocks, BLOCKS),
            ("activations", self.activations, tuple(ACTIVATIONS)),
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

    @property
    def num_edges(self) -> int:
        return 0

    def num_layers(self, macro: dict[str, Any] | None = None) -> int:
        raise InvalidSpace(f"{self.name} is a macro space: it has stages, not cell layers")

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

    def validate(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> Genotype:
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

    # -- networks ----------------------------------------------------------------------------

    def config(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> MacroConfig:
        """The MacroConfig of `genotype` at a size (default: deployed)."""
        from robnas.models.robust_resnet import PLAIN_BOTTLENECK, ROBUST_BLOCK
        from robnas.models.wrn import MacroConfig

        g = self._macro(self.validate(genotype))
        m = self.resolve_macro() if macro is None else macro
        scale = float(m["depth_scale"])
        base = tuple(int(c) for c in m["base_channels"])
        if len(base) != self.stages:
            raise InvalidSpace(
                f"{self.name}: base_channels needs {self.stages} entries, got {base}"
            )
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

    def cost(
        self, genotype: Genotype, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
    ) -> Cost:
        """Exact parameters and MACs of the built network, without building it."""
        from robnas.data.datasets import dataset_info
        from robnas.models.scaling import macro_cost

        info = dataset_info(dataset)
        return macro_cost(self.config(genotype, macro), info.num_classes, info.image_size)

    def num_params(
        self, genotype: Genotype, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
    ) -> int:
        return self.cost(genotype, macro, dataset).params

    def flops(
        self, genotype: Genotype, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
    ) -> int:
        """Multiply-adds of one image (what `robnas arch info` and count_flops report)."""
        return self.cost(genotype, macro, dataset).macs

    def smallest(self) -> list[Genotype]:
        """The cheapest genotype of each block/SE/activation (costs grow with depth and width)."""
        lo_d, lo_w = [min(self.depths)] * self.stages, [min(self.widths)] * self.stages
        return [
            MacroGenotype.make(self.name, lo_d, lo_w, b, a, s)
            for b in self.blocks
            for a in self.activations
            for s in self.se_modes
        ]

    def min_params(self, macro: dict[str, Any] | None = None, dataset: str = "cifar10") -> int:
        return min(self.num_params(g, macro, dataset) for g in self.smallest())

    def min_flops(self, macro: dict[str, Any] | None = None, dataset: str = "cifar10") -> int:
        return min(self.flops(g, macro, dataset) for g in self.smallest())

    def build(
        self, genotype: Genotype, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
    ) -> nn.Module:
        from robnas.data.datasets import dataset_info
        from robnas.models.wrn import build_macro

        info = dataset_info(dataset)
        return build_macro(self.config(genotype, macro), info.num_classes, info.mean, info.std)

    def build_supernet(
        self, macro: dict[str, Any] | None = None, dataset: str = "cifar10"
    ) -> nn.Module:
        raise InvalidSpace(
            f"{self.name} is a macro space without a supernet; `robnas search --space {self.name}` "
            "trains each candidate at a small proxy instead"
        )

    def __repr__(self) -> str:
        return f"MacroSpace({self.name!r}, {self.stages} stages, {self.size:,} networks)"


SPACE_KINDS["macro"] = MacroSpace
