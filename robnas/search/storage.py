"""Optuna storages for studies, and how a worker tells a live claim from a dead one.

Storage URLs:

    sqlite:///PATH                   one machine (the default: study.db in the run dir)
    journal:PATH, *.log, *.journal   a JournalStorage file (shared disk, no server)
    postgresql://USER@HOST/DB        a database server: many workers on many machines
    mysql+pymysql://USER@HOST/DB     (any SQLAlchemy URL Optuna's RDBStorage accepts)

Liveness of a RUNNING trial: on the same host, its worker's pid and process start time (a reused
pid is not mistaken for the worker). On a database server, Optuna's heartbeat as well: a worker
records a heartbeat for its trial every `ROBNAS_HEARTBEAT` seconds (default 60), stamped with the
server's clock, and a trial without one for three intervals is failed by whichever worker looks
next (so a worker killed on another machine loses its claim within minutes, whatever the clocks).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial

from robnas.errors import ConfigError

log = logging.getLogger(__name__)

#: Seconds between heartbeats on a database server (ROBNAS_HEARTBEAT overrides it).
HEARTBEAT_SECONDS = 60
#: A trial whose last heartbeat is older than this many intervals is stale.
GRACE_INTERVALS = 3
#: Workers starting together may race to create the tables; a failed open is retried.
OPEN_ATTEMPTS = 3


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith((".log", ".journal"))


def is_server(url: str) -> bool:
    """A database server (PostgreSQL, MySQL, ...), as opposed to a file on this machine."""
    return not is_journal(url) and not url.startswith("sqlite")


def heartbeat_seconds() -> int:
    text = os.environ.get("ROBNAS_HEARTBEAT", str(HEARTBEAT_SECONDS))
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigError(f"ROBNAS_HEARTBEAT={text!r}: give a whole number of seconds >= 1")
    return seconds


def _with_driver(url: str) -> str:
    """`postgresql://` and `mysql://` name no driver (SQLAlchemy's default one changes between
    versions): name the first installed one."""
    scheme, sep, rest = url.partition("://")
    drivers = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("pymysql", "MySQLdb")}
    if scheme not in drivers:
        return url
    for module in drivers[scheme]:
        if importlib.util.find_spec(module) is not None:
            return f"{scheme}+{module.lower()}{sep}{rest}"
    extra = "pip install 'robnas[postgres]'" if scheme == "postgresql" else "pip install pymysql"
    raise ConfigError(f"no Python driver for {scheme} storages; install one: {extra}")


def _log_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    log.warning("trial %d lost its heartbeat (worker gone); failed it", trial.number)


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL; `journal:PATH` or a `.log`/`.journal` path is a journal file."""
    if is_journal(url):
        path = url.removeprefix("journal:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several worker processes on one file: wait for the lock instead of failing
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    else:
        url = _with_driver(url)
        interval = heartbeat_seconds()
        kwargs = {
            # a worker holds its connections for hours: test them before use, renew hourly
            "engine_kwargs": {"pool_pre_ping": True, "pool_recycle": 3600},
            "heartbeat_interval": interval,
            "grace_period": GRACE_INTERVALS * interval,
            "heartbeat_stale_trial_callback": _log_stale,
        }
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as err:  # bad URL, missing driver, unreachable server, a creation race
            if attempt == OPEN_ATTEMPTS or not is_server(url):
                message = f"cannot open storage {url!r}: {err}".splitlines()[0]
                raise ConfigError(message) from None
            time.sleep(attempt)
    raise AssertionError("unreachable")


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between heartbeats, or None when the storage keeps none."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return storage.get_heartbeat_interval()
    return None


def record_heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    if isinstance(storage, optuna.storages.RDBStorage) and heartbeat_interval(storage):
        storage.record_heartbeat(trial_id)


@contextlib.contextmanager
def beating(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat in a background thread while the block runs."""
    interval = heartbeat_interval(storage)
    if interval is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                record_heartbeat(storage, trial_id)
            except Exception as err:  # the server may be briefly away: the next beat retries
                log.warning("heartbeat of trial id %d failed: %s", trial_id, err)

    thread = threading.Thread(target=beat, name="robnas-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_lost_heartbeats(study: optuna.Study) -> None:
    """Fail the RUNNING trials whose heartbeat stopped (a no-op without heartbeats)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process (tells a live process from a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_alive(worker: dict[str, Any]) -> bool:
    """For a worker on this host: is its process the one that claimed?"""
    pid = int(worker.get("pid", -1))
    return pid_alive(pid) and process_start(pid) == worker.get("start")
