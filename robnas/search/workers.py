"""A study worker: who it is, its entry in the study's worker registry, and its judgement of
other workers' claims (a RUNNING trial is a claim; a dead worker's claim is failed).

A claim is alive while its worker is: on this host, the worker's pid with the same process start
time (a reused pid is not mistaken for it); elsewhere, on a database server, while Optuna's
heartbeat is fresh (`fail_lost_heartbeats` fails the others); elsewhere on a file storage, for
`stale_after` seconds after the claim.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from robnas.search.storage import heartbeat_interval, process_alive, process_start
from robnas.strategies.base import Strategy

log = logging.getLogger(__name__)

#: A RUNNING trial without an owner (created outside robnas) counts as live this long.
CREATING_SECONDS = 60.0


class Worker:
    def __init__(self, *, stale_after: float) -> None:
        self.stale_after = stale_after
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
        self.study_id = -1
        self.heartbeat = False  # the storage keeps Optuna heartbeats

    def attach(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        self.storage, self.study_id = storage, study_id
        self.heartbeat = heartbeat_interval(storage) is not None

    def info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "start": process_start(self.pid),
            "token": self.token,
            "time": time.time(),
        }

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def claim(self, study: optuna.Study, genotype: str) -> optuna.Trial:
        """A RUNNING trial created with its owner and genotype in one write. Created first and
        labelled after, a worker killed in between left a trial with no owner, which every
        other worker had to count as a live claim for CREATING_SECONDS."""
        template = FrozenTrial(
            number=-1,
            trial_id=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={"worker": self.info(), "genotype": genotype},
            system_attrs={},
            intermediate_values={},
        )
        return optuna.Trial(study, self.storage.create_new_trial(self.study_id, template))

    def owns(self, t: FrozenTrial) -> bool:
        return (t.user_attrs.get("worker") or {}).get("token") == self.token

    def here(self, t: FrozenTrial) -> bool:
        """Was the trial claimed on this host (where pids tell a dead worker at once)?"""
        return (t.user_attrs.get("worker") or {}).get("host") == self.host

    # -- the registry (decides only whether a worker joins others with its own seed) --------------

    def _alive(self, worker: dict[str, Any] | None) -> bool:
        if not worker or worker.get("finished"):
            return False
        if worker.get("token") == self.token:
            return True
        if worker.get("host") == self.host:
            return process_alive(worker)
        return time.time() - float(worker.get("time", 0)) < self.stale_after

    def register(self, strategy: Strategy) -> None:
        """Record this worker; a worker joining live others searches with its own seed."""
        attrs = self.storage.get_study_system_attrs(self.study_id)
        others = [v for k, v in attrs.items() if k.startswith("worker:") and self._alive(v)]
        self.storage.set_study_system_attr(self.study_id, f"worker:{self.token}", self.info())
        if others:
            seq = np.random.SeedSequence([strategy.seed, len(attrs)])
            seed = int(seq.generate_state(1)[0])
            log.info("joining %d live worker(s): searching with seed %d", len(others), seed)
            strategy.reseed(seed)

    def finish(self) -> None:
        """A worker that stopped (done, crashed, interrupted) no longer counts as live."""
        info = {**self.info(), "finished": True}
        self.storage.set_study_system_attr(self.study_id, f"worker:{self.token}", info)

    # -- claims ------------------------------------------------------------------------------------

    def claim_alive(self, t: FrozenTrial) -> bool:
        """Is this RUNNING trial's worker alive?"""
        worker = t.user_attrs.get("worker")
        if worker is None:  # created without an owner (not by robnas): maybe being labelled
            started = t.datetime_start.timestamp() if t.datetime_start else 0.0
            return time.time() - started < CREATING_SECONDS
        if worker.get("token") == self.token:
            return True
        if worker.get("host") == self.host:
            return process_alive(worker)
        if self.heartbeat:  # fail_lost_heartbeats has failed it if its heartbeat stopped
            return True
        return time.time() - float(worker.get("time", 0)) < self.stale_after

    def fail(self, number: int, **attrs: Any) -> None:
        try:
            trial_id = self.trial_id(number)
            for k, v in attrs.items():
                self.storage.set_trial_user_attr(trial_id, k, v)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            pass  # another worker finished or failed it first

    def fail_stale(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Fail the RUNNING trials of dead workers; the trials without them."""
        kept = []
        for t in trials:
            if t.state == TrialState.RUNNING and not self.claim_alive(t):
                log.warning("trial %d was left running by a dead worker; failing it", t.number)
                self.fail(t.number, stale=True)
            else:
                kept.append(t)
        return kept
