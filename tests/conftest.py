"""Shared fixtures. Real data comes from ROBNAS_DATA (CI sets it); nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path | None:
    env = os.environ.get("ROBNAS_DATA")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("real data not found: set ROBNAS_DATA to the shared data folder")
    return root


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist each worker gets one core: two torch threads per worker on a 2-core
    # machine oversubscribe it and make small forward passes orders of magnitude slower.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    # Tests pass generators explicitly; this only keeps layer initialisation reproducible.
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decoded-dataset caches go to one temp folder per session, never the user's home.
    cache = tmp_path_factory.getbasetemp() / "robnas-cache"
    monkeypatch.setenv("ROBNAS_CACHE", str(cache))
