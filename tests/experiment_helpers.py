"""Load an experiments/ script as a module, for tests that call its functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """experiments/<name>.py, registered in sys.modules for this test only (dataclasses look
    their module up there)."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # as run: its sibling modules importable
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def one_string_per_class(space, ops) -> list[str]:
    """The first cell string (in `itertools.product` order over `ops`) of every isomorphism class
    of an NB201-shaped space (three nodes, six edges), without the space prefix."""
    import itertools

    from robnas.genotype import Genotype

    classes: dict[str, str] = {}
    for o in itertools.product(ops, repeat=6):
        text = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        classes.setdefault(str(space.canonical(Genotype.from_str(f"{space.name}:{text}"))), text)
    return list(classes.values())


def convs_table(path: Path, seconds: float = 0.5) -> Path:
    """A per-cell signal table of every NB201 class, signal `convs` (the string's convolutions),
    each row recorded at `seconds`: what TableSignals reads."""
    from robnas.space.search_space import get_space

    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    strings = one_string_per_class(get_space("nb201"), ops)
    rows = "".join(f"{t},{t.count('conv')},{seconds}\n" for t in strings)
    path.write_text("arch,convs,seconds\n" + rows)
    return path
