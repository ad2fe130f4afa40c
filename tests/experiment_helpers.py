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
