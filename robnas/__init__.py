"""robnas: neural architecture search for adversarially robust cells."""

from __future__ import annotations

from robnas.budget import parse_budget
from robnas.errors import (
    BudgetError,
    CheckpointError,
    ConfigError,
    DataError,
    InvalidGenotype,
    InvalidSpace,
    RobnasError,
    UnknownName,
)
from robnas.export import load
from robnas.genotype import Genotype
from robnas.models import ArchSpec, build, resolve_arch
from robnas.space import SearchSpace, get_space, space_names

__version__ = "0.1.0"

__all__ = [
    "ArchSpec",
    "BudgetError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Genotype",
    "InvalidGenotype",
    "InvalidSpace",
    "RobnasError",
    "SearchSpace",
    "UnknownName",
    "__version__",
    "build",
    "get_space",
    "load",
    "parse_budget",
    "resolve_arch",
    "space_names",
]
