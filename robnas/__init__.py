"""robnas: neural architecture search for adversarially robust cells.

The public API is loaded lazily: `import robnas` (and `robnas --help`) imports no torch; the
first use of a name imports the module that defines it. `__version__` is the installed
distribution's version (pyproject.toml is its one source).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
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
    __version__: str
    from robnas.export.record import load
    from robnas.genotype import Genotype
    from robnas.models.resolve import ArchSpec, build, resolve_arch
    from robnas.models.sizing import num_params
    from robnas.space.budget import parse_budget
    from robnas.space.search_space import SearchSpace, get_space, space_names

# name -> module that defines it
_LAZY = {
    "parse_budget": "robnas.space.budget",
    "load": "robnas.export.record",
    "Genotype": "robnas.genotype",
    "ArchSpec": "robnas.models.resolve",
    "build": "robnas.models.resolve",
    "resolve_arch": "robnas.models.resolve",
    "num_params": "robnas.models.sizing",
    "SearchSpace": "robnas.space.search_space",
    "get_space": "robnas.space.search_space",
    "space_names": "robnas.space.search_space",
}


def _version() -> str:
    try:
        return version("robnas")
    except PackageNotFoundError:  # a source tree nobody installed: no metadata to read
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
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
    "num_params",
    "parse_budget",
    "resolve_arch",
    "space_names",
]
