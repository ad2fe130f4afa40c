"""The real data folder tests read: $ROBNAS_DATA, else `../shared/data` beside the repository.
An empty ROBNAS_DATA counts as unset (`Path("")` is the working directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "data"


def find_data_root() -> Path | None:
    path = Path(os.environ.get("ROBNAS_DATA") or DEFAULT)
    return path.resolve() if path.is_dir() else None


#: The folder (the default one, possibly missing, when none is found: tests skip on `needs`).
DATA: Path = find_data_root() or DEFAULT


def needs(*names: str) -> pytest.MarkDecorator:
    """Skip unless the data folder holds these datasets."""
    missing = not all((DATA / n).is_dir() for n in names)
    return pytest.mark.skipif(missing, reason=f"needs ROBNAS_DATA with {' and '.join(names)}")
