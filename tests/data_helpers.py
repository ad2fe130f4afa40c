"""The real data folder tests read, and the one rule for a test that cannot find it.

The folder is $ROBNAS_DATA, else `../shared/data` beside the repository (an empty ROBNAS_DATA
counts as unset: `Path("")` is the working directory). A test says what it reads with `needs`
(or by taking the `data_root` fixture, which needs the folder and, unless the test is marked
with `needs`, every dataset in it). When something is missing the test skips, except under
ROBNAS_REQUIRE_DATA=1 (CI), where it fails: a CI run without its data must not pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "data"
#: What the data folder holds: two dataset folders and one file.
DATASETS = ("cifar10", "nb201-robustness", "robnet-architectures.json")
#: The marker `needs` applies; conftest.py checks it before each marked test runs.
MARKER = "needs_data"
REQUIRE = "ROBNAS_REQUIRE_DATA"


def find_data_root() -> Path | None:
    path = Path(os.environ.get("ROBNAS_DATA") or DEFAULT)
    return path.resolve() if path.is_dir() else None


#: The folder (the default one, possibly missing, when none is found: see `needs`).
DATA: Path = find_data_root() or DEFAULT


def missing_data(*names: str) -> str | None:
    """Why the data folder cannot serve a test reading `names` (None when it can)."""
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset {unknown[0]!r}; the data folder holds {DATASETS}")
    root = find_data_root()
    if root is None:
        where = os.environ.get("ROBNAS_DATA") or str(DEFAULT)
        return f"data folder {where} not found: set ROBNAS_DATA to the shared data folder"
    absent = [n for n in names if not (root / n).exists()]
    if absent:
        return f"the data folder {root} lacks {' and '.join(absent)}"
    return None


def data_unavailable(reason: str) -> NoReturn:
    """Skip the running test, or fail it under ROBNAS_REQUIRE_DATA=1."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} (and {REQUIRE}=1)", pytrace=False)
    pytest.skip(reason)


def require_data(*names: str) -> Path:
    """The data folder, holding `names`; skips or fails the running test otherwise."""
    reason = missing_data(*names)
    if reason is not None:
        data_unavailable(reason)
    root = find_data_root()
    assert root is not None
    return root


def needs(*names: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as `pytestmark`) as reading these datasets of the folder."""
    if not names or any(n not in DATASETS for n in names):
        raise ValueError(f"needs() takes dataset names out of {DATASETS}, got {names}")
    return getattr(pytest.mark, MARKER)(*names)
