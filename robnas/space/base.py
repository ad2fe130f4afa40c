"""What every search space offers, as data: the `SearchSpace` protocol, and the size tables and
genotype reading that cell spaces (cell.py) and macro spaces (macro.py) share.

A space says which genotypes exist and how to move between them: sample, mutate, neighbours,
validate, parse, canonical forms, and a flat categorical encoding (dimensions / encode /
decode). It builds nothing: networks and their parameter counts are robnas.models' business
(`robnas.models.build(space, genotype, macro)`, `robnas.models.sizing.num_params(...)`).
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robnas.errors import InvalidSpace, UnknownName, unknown_name
from robnas.genotype import Genotype
from robnas.specs import Size


@dataclass(frozen=True)
class Dimension:
    """One categorical choice: the op set of one edge of one cell, or one macro choice."""

    name: str
    choices: tuple[str, ...]


@runtime_checkable
class SearchSpace(Protocol):
    """What strategies, studies and the search pipeline need of a space, whatever its kind."""

    #: "cell" (CellSpace: one cell repeated or one per layer) or "macro" (MacroSpace: networks)
    kind: str
    name: str
    description: str
    source: str
    #: the default size (the deployed network) and the named `[sizes]` tables
    macro: dict[str, Any]
    sizes: dict[str, dict[str, Any]]

    @property
    def size(self) -> int:
        """The number of distinct genotypes."""
        ...

    def describe(self) -> list[str]:
        """The choices, one short line each (`robnas spaces`)."""
        ...

    def resolve_size(
        self, size: Size | None = None, *, base: dict[str, Any] | None = None, **overrides: Any
    ) -> dict[str, Any]: ...

    def resolve_macro(self, size: str | None = None, **overrides: Any) -> dict[str, Any]: ...

    def parse(self, arch: Genotype | str | dict[str, Any] | Sequence[Any]) -> Genotype: ...

    def validate(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> Genotype: ...

    def sample(
        self, rng: np.random.Generator, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> Genotype: ...

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype: ...

    def neighbours(self, genotype: Genotype) -> list[Genotype]: ...

    def canonical(self, genotype: Genotype) -> str:
        """One string per isomorphism class: a query is the first evaluation of a class."""
        ...

    def canonical_key(self, genotype: Genotype) -> str:
        """A short stable key of the isomorphism class (for storage and caches)."""
        ...

    def dimensions(
        self, *, free: bool = False, macro: dict[str, Any] | None = None
    ) -> list[Dimension]: ...

    def encode(self, genotype: Genotype) -> list[str]: ...

    def decode(self, values: Sequence[str]) -> Genotype: ...

    def __hash__(self) -> int:  # spaces key caches (canonical forms, parameter tables)
        ...


class SizedSpace(ABC):
    """The parts every space kind implements alike: its `[macro]` and `[sizes]` tables, how a
    size resolves against them, and reading a genotype from an object or JSON (each kind reads
    its own text forms in `_parse_text` / `_parse_codes` and checks them in `validate`)."""

    name: str
    source: str
    macro: dict[str, Any]
    sizes: dict[str, dict[str, Any]]

    @abstractmethod
    def validate(self, genotype: Genotype, macro: dict[str, Any] | None = None) -> Genotype: ...

    @abstractmethod
    def _parse_text(self, text: str) -> Genotype: ...

    @abstractmethod
    def _parse_codes(self, arch: Sequence[Any]) -> Genotype: ...

    def resolve_size(
        self, size: Size | None = None, *, base: dict[str, Any] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """The macro of a size, for every command that builds a network: `base` (default the
        space's `[macro]`), then the size's table of `[sizes]`, then its counts, then any
        `overrides` (None: not given). A size the user names must exist; a preset's default
        size (`size.fallback`) the space lacks leaves `base` as it is (nb201 has no `small`:
        `--preset small` builds its default size in every command)."""
        macro = dict(self.macro if base is None else base)
        name = None if size is None else size.name
        if size is not None and size.fallback and name not in self.sizes:
            name = None  # a preset's default size this space does not have
        if name is not None:
            if name not in self.sizes:
                raise UnknownName(
                    f"{unknown_name('size', name, self.sizes)} (the sizes of space {self.name})"
                )
            macro.update(self.sizes[name])
        given = [*(size.counts if size is not None else ()), *overrides.items()]
        for key, value in given:
            if value is None:
                continue
            if key not in macro:
                raise InvalidSpace(
                    f"macro option {key!r} does not apply to space {self.name!r}; known: {', '.join(sorted(macro))}"
                )
            macro[key] = value
        return macro

    def resolve_macro(self, size: str | None = None, **overrides: Any) -> dict[str, Any]:
        """`resolve_size` by a size name and keyword overrides (None: not given)."""
        return self.resolve_size(None if size is None else Size(size), **overrides)

    def parse(self, arch: Genotype | str | dict[str, Any] | Sequence[Any]) -> Genotype:
        """A genotype from an object, its string (or the kind's short forms), JSON, or codes."""
        if isinstance(arch, Genotype):
            return self.validate(arch)
        if isinstance(arch, dict):
            return self.validate(Genotype.from_dict(arch))
        if isinstance(arch, str):
            text = arch.strip()
            if text.startswith("{"):
                return self.validate(Genotype.from_dict(json.loads(text)))
            return self._parse_text(text)
        return self._parse_codes(arch)


def read_sizes(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """A space file's `[sizes]` tables. Files written before sizes had their own name called
    them `[presets]`: those are read as sizes, with a warning to rename them."""
    if "presets" not in data:
        return dict(data.get("sizes", {}))
    if "sizes" in data:
        raise InvalidSpace(
            f"{source} has both [sizes] and [presets] tables; rename [presets] to [sizes]"
        )
    warnings.warn(
        f"{source}: [presets.NAME] tables are sizes now; rename them to [sizes.NAME]",
        FutureWarning,
        stacklevel=2,
    )
    return dict(data["presets"])


__all__ = ["Dimension", "SearchSpace", "SizedSpace", "read_sizes"]
