"""robnas: neural architecture search for adversarially robust cells.

The public API is loaded lazily: `import robnas` (and `robnas --help`) imports no torch; the
first use of a name imports the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from robnas.export.record import load
    from robnas.genotype import Genotype
    from robnas.models.resolve import ArchSpec, build, resolve_arch
    from robnas.space.budget import parse_budget
    from robnas.space.search_space import SearchSpace, get_space, space_names

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "parse_budget": "robnas.space.budget",
    "load": "robnas.export.record",
    "Genotype": "robnas.genotype",
    "ArchSpec": "robnas.models.resolve",
    "build": "robnas.models.resolve",
    "resolve_arch": "robnas.models.resolve",
    "SearchSpace": "robnas.space.search_space",
    "get_space": "robnas.space.search_space",
    "space_names": "robnas.space.search_space",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robnas' has no attribute {name!r}")


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
