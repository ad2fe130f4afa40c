"""Shared fixtures. Real data comes from ROBNAS_DATA (CI sets it); nothing is downloaded. A test
reading it takes `data_root` or is marked with `data_helpers.needs`; without the data it skips,
or fails under ROBNAS_REQUIRE_DATA=1 (see data_helpers)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from data_helpers import DATASETS, MARKER, needs, require_data


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data folder. What a test reads of it is checked before the test runs (its `needs`
    marker, else every dataset: see pytest_collection_modifyitems)."""
    return require_data()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): reads these datasets of ROBNAS_DATA; skips without them, "
        "fails under ROBNAS_REQUIRE_DATA=1",
    )
    # Under pytest-xdist each worker gets one core: two torch threads per worker on a 2-core
    # machine oversubscribe it and make small forward passes orders of magnitude slower.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a test taking data_root without saying what it reads needs the whole folder
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "data_root" in fixtures and item.get_closest_marker(MARKER) is None:
            item.add_marker(needs(*DATASETS))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before any fixture is set up: a missing dataset skips (or fails) the test, never errors
    names = {name for mark in item.iter_markers(MARKER) for name in mark.args}
    if names:
        require_data(*sorted(names))


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


# -- a PostgreSQL server for the session (tests marked `postgres`) --------------------------------


def _postgres_unavailable(reason: str) -> None:
    # CI sets ROBNAS_REQUIRE_POSTGRES=1: there a missing server is a failure, not a skip
    if os.environ.get("ROBNAS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (and ROBNAS_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def _postgres_bindir() -> Path | None:
    """Where initdb, pg_ctl and createdb are: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []  # through symlinks
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )[::-1]
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "createdb")):
            return folder
    return None


def _run(cmd: list[str | Path], what: str) -> None:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL server listening on a Unix socket in a temp folder (no TCP)."""
    bindir = _postgres_bindir()
    if bindir is None:
        _postgres_unavailable(
            "PostgreSQL server not found (initdb, pg_ctl): apt-get install postgresql"
        )
    assert bindir is not None
    if not any(importlib.util.find_spec(m) for m in ("psycopg", "psycopg2")):
        _postgres_unavailable("no PostgreSQL driver: pip install -e '.[postgres]'")
    run_as: list[str | Path] = []
    root = Path(tempfile.mkdtemp(prefix="robnas-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _postgres_unavailable("running as root and no 'postgres' user to run the server as")
        run_as = ["runuser", "-u", "postgres", "--"]
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", "5432"  # the port only names the socket file
    _run(
        [*run_as, bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
        "initdb",
    )
    options = f"-c listen_addresses='' -k {root} -p {port} -c fsync=off"
    start = [bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", options, "-w", "start"]
    _run([*run_as, *start], "pg_ctl start")
    try:
        yield {"host": str(root), "port": port, "bindir": str(bindir)}
    finally:
        stop = [*run_as, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]
        subprocess.run([str(c) for c in stop], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: dict[str, str]) -> str:
    """A fresh, empty database on the session's server, as a storage URL."""
    host, port = postgres_server["host"], postgres_server["port"]
    name = f"robnas_{uuid.uuid4().hex[:12]}"
    createdb = Path(postgres_server["bindir"]) / "createdb"
    _run([createdb, "-h", host, "-p", port, "-U", "postgres", name], "createdb")
    return f"postgresql://postgres@/{name}?host={host}&port={port}"
