"""The error hierarchy: every message tells the user what to do next."""

from __future__ import annotations

from collections.abc import Iterable


class RobnasError(Exception):
    """Base class of errors a user can act on; the CLI prints it as one line and exits 2."""


class InvalidGenotype(RobnasError, ValueError):
    """A genotype that does not belong to its search space (names the cell, edge and op)."""


class InvalidSpace(RobnasError, ValueError):
    """A malformed search-space definition (names the field and the problem)."""


class BudgetError(RobnasError, ValueError):
    """An unparsable budget, or one no network of the space can meet."""


class UnknownName(RobnasError, KeyError):
    """A name missing from a registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(RobnasError):
    """A dataset that cannot be found or read."""


class CheckpointError(RobnasError):
    """A checkpoint that is corrupt or does not match the architecture or run."""


class ConfigError(RobnasError, ValueError):
    """A configuration value or run directory that does not fit."""


def check_name(what: str, name: str, known: Iterable[str]) -> str:
    """`name` if it is one of `known`, else UnknownName in the one message form every
    command uses: `unknown preset 'tinyy'; known: paper, small, tiny`."""
    names = sorted(known)
    if name not in names:
        raise unknown_name(what, name, names)
    return name


def unknown_name(what: str, name: str, known: Iterable[str]) -> UnknownName:
    """The UnknownName for `name` among `known` (registries, presets, sizes, objectives)."""
    return UnknownName(f"unknown {what} {name!r}; known: {', '.join(sorted(known)) or 'none'}")
