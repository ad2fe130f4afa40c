"""Search spaces by name: the built-in TOML files (search_spaces/) or a user's file, read as a
cell space (cell.py) or, with `kind = "macro"`, a macro space (macro.py). Both implement the
`SearchSpace` protocol (base.py)."""

from __future__ import annotations

import functools
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from robnas.errors import InvalidSpace, UnknownName
from robnas.space.base import Dimension, SearchSpace
from robnas.space.cell import CellSpace
from robnas.space.macro import MacroSpace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Space classes by the TOML `kind` field.
SPACE_KINDS: dict[str, type[CellSpace] | type[MacroSpace]] = {
    "cell": CellSpace,
    "macro": MacroSpace,
}


def _load_toml(path: Path, source: str) -> SearchSpace:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise InvalidSpace(f"cannot read space file {source}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidSpace(f"{source} is not valid TOML: {err}") from None
    return _from_data(data, source)


def _from_data(data: dict[str, Any], source: str) -> SearchSpace:
    """A cell space, or another kind's (`kind = "macro"`: search_spaces/wrn.toml)."""
    kind = data.get("kind", "cell")
    if kind not in SPACE_KINDS:
        raise InvalidSpace(f"{source}: unknown kind {kind!r}; known: {', '.join(SPACE_KINDS)}")
    return SPACE_KINDS[kind](data, source)


def _builtin_dir() -> Any:
    return resources.files("robnas.search_spaces")


def space_names() -> list[str]:
    return sorted(p.name[:-5] for p in _builtin_dir().iterdir() if p.name.endswith(".toml"))


@functools.cache
def get_space(name_or_path: str) -> SearchSpace:
    """A built-in space by name (`darts`, `nb201`, `wrn`), or a user's TOML file by path."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise InvalidSpace(
                f"space file {text} not found; pass a TOML file or one of: {', '.join(space_names())}"
            )
        return _load_toml(path, text)
    if text.lower() not in space_names():
        raise UnknownName(
            f"unknown search space {text!r}; known: {', '.join(space_names())} (or a path to a .toml file)"
        )
    entry = _builtin_dir() / f"{text.lower()}.toml"
    return _from_data(tomllib.loads(entry.read_text()), f"{text.lower()}.toml")


def get_cell_space(name_or_path: str) -> CellSpace:
    """`get_space` for code that needs cells (supernets, canonical cell forms, drawings): a
    macro space is refused with a one-line error."""
    return cell_space(get_space(name_or_path))


def cell_space(space: SearchSpace) -> CellSpace:
    """`space` as a cell space; a macro space (whole networks, no cells) is refused."""
    if not isinstance(space, CellSpace):
        raise InvalidSpace(
            f"{space.name} is a macro space of whole networks, without cells or a supernet; use a "
            f"cell space here (darts, nb201), or `robnas search --space {space.name}`, which "
            "trains each candidate at a small proxy"
        )
    return space


__all__ = [
    "CellSpace",
    "Dimension",
    "MacroSpace",
    "SearchSpace",
    "cell_space",
    "get_cell_space",
    "get_space",
    "space_names",
]
