"""The search loop: a strategy proposes, an evaluator scores, an Optuna storage keeps every trial.

Run directory:

    config.json   resolved settings (a run dir of a different configuration is refused)
    study.db      Optuna storage (SQLite by default; `storage=URL` for any Optuna storage, a
                  `journal:PATH` or `*.log` path for a JournalStorage file on shared disk)
    trials.csv    one row per finished trial, rewritten atomically after every trial
    summary.json  settings, objective, best (genotype, metrics, num_params and flops at the final
                  size), top_k; topk/ holds the top-k genotypes as JSON

Durability: a trial is committed to the storage before the strategy hears of it and before the
next trial starts. Each Optuna trial carries, as user attributes (what optuna-dashboard shows),
its owner (`worker`), the genotype (`genotype`, the canonical string) and, once finished, the
full result (`result`, what resume reads), `metrics`, `num_params` (at the final size, when the
search knows it), `proxy_num_params` (as scored) and `flops`; its value is the objective (and
the parameter count for NSGA-II).

Resume: a fresh strategy with the same seed is run again from the start; whenever it proposes
a genotype the storage already holds, it is told the stored result instead of evaluating, so the
strategy reaches exactly the state it had and continues identically; no finished trial is
repeated or lost. A trial left RUNNING by a dead worker (storage.py says how one is told) is
marked failed and its genotype evaluated again.

Several workers: a worker claims a genotype by creating a RUNNING trial with its key, then looks
for other claims of that key; if it sees one it yields (its trial is marked failed with
`duplicate_of`) and proposes another genotype, so no genotype is evaluated twice. A key is the
genotype's isomorphism class (`SearchSpace.canonical_key`): a query is the first evaluation of a
class, and an isomorph of a stored trial is answered from the storage. Workers share the results
through the storage (a proposal another worker finished is answered from the storage). A worker
that reaches the trial count while others still hold claims waits for them: if one of them dies,
its claim is failed and the trial is run again, so the study ends with exactly the trials asked.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.result import Result
from robnas.search.storage import (
    beating,
    fail_lost_heartbeats,
    heartbeat_interval,
    make_storage,
    process_alive,
    process_start,
    record_heartbeat,
)
from robnas.strategies.base import Strategy

log = logging.getLogger(__name__)

STUDY_NAME = "robnas"
#: Settings that may change between a run and its resume (they do not change the search).
RESUMABLE_KEYS = frozenset({"trials", "storage", "resume", "progress", "workers", "top_k"})
#: A proposal loop answered only from memory this many times in a row ends the run early.
MAX_KNOWN_IN_A_ROW = 10_000
#: Seconds between looks at the storage while waiting for other workers' claims.
POLL_SECONDS = 1.0
#: A claim whose worker has not written its owner yet is being created for at most this long.
CREATING_SECONDS = 60.0


class Evaluator(Protocol):
    def evaluate(self, genotype: Genotype) -> Result: ...


@dataclass(frozen=True)
class TrialRecord:
    number: int
    genotype: str
    result: Result
    flops: int | None

    @property
    def status(self) -> str:
        return self.result.status


Progress = Callable[[int, int, "TrialRecord | None", "TrialRecord | None"], None]


def load_config(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is unreadable ({err}); use a new --out directory") from None


def check_config(run_dir: str | Path, config: dict[str, Any]) -> bool:
    """True if run_dir already holds this configuration; ConfigError if it holds another."""
    stored = load_config(run_dir)
    if stored is None:
        if Path(run_dir).exists() and any(Path(run_dir).iterdir()):
            raise ConfigError(
                f"{run_dir} exists and is not a robnas run (no config.json); use a new --out directory"
            )
        return False
    mine = json.loads(json.dumps(config))
    diffs = [
        f"{k}: {stored.get(k)!r} != {mine.get(k)!r}"
        for k in sorted(set(stored) | set(mine))
        if k not in RESUMABLE_KEYS and stored.get(k) != mine.get(k)
    ]
    if diffs:
        raise ConfigError(
            f"{run_dir} belongs to a different configuration ({'; '.join(diffs[:3])}); "
            "use a new --out directory or the run's own settings"
        )
    return True


def init_run_dir(run_dir: str | Path, config: dict[str, Any]) -> bool:
    """Create run_dir with config.json (or accept it if it holds this config); True if it existed."""
    existed = check_config(run_dir, config)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    if not existed:
        atomic_write_text(
            Path(run_dir) / "config.json", json.dumps(config, indent=2, sort_keys=True)
        )
    return existed


class Study:
    def __init__(
        self,
        run_dir: str | Path,
        config: dict[str, Any],
        evaluator: Evaluator,
        strategy: Strategy,
        storage: str | None = None,
        *,
        flops: Callable[[Genotype], int] | None = None,
        final_params: Callable[[Genotype], int] | None = None,
        stale_after: float = 6 * 3600.0,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.config = json.loads(json.dumps(config))
        self.evaluator = evaluator
        self.strategy = strategy
        self.storage_given = storage is not None
        self.storage_url = storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"
        self.flops = flops
        self.final_params = final_params
        self.stale_after = stale_after
        self.objective = strategy.objective
        self.direction = strategy.direction
        self.multi = strategy.multi_objective
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._flops_cache: dict[str, int] = {}
        self._classes: dict[str, str] = {}  # genotype string -> isomorphism class key
        self._study: optuna.Study | None = None
        self._storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
        self._study_id = -1
        self.heartbeat = False  # the storage keeps Optuna heartbeats (known once open)

    # -- storage ---------------------------------------------------------------------------------

    def open(self) -> optuna.Study:
        if self._study is not None:
            return self._study
        # a storage named by the user is opened first: a bad URL writes nothing
        storage = make_storage(self.storage_url) if self.storage_given else None
        init_run_dir(self.run_dir, self.config)
        storage = storage or make_storage(self.storage_url)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = [self.direction, "minimize"] if self.multi else [self.direction]
        self._study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            directions=directions,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        self._storage = storage
        self._study_id = storage.get_study_id_from_name(STUDY_NAME)
        self.heartbeat = heartbeat_interval(storage) is not None
        return self._study

    def _worker_info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "start": process_start(self.pid),
            "token": self.token,
            "time": time.time(),
        }

    def _alive(self, worker: dict[str, Any] | None) -> bool:
        """Is this registered worker still running? (Only decides whether to reseed.)"""
        if not worker or worker.get("finished"):
            return False
        if worker.get("token") == self.token:
            return True
        if worker.get("host") == self.host:
            return process_alive(worker)
        return time.time() - float(worker.get("time", 0)) < self.stale_after

    def _register(self) -> None:
        """Record this worker; a worker joining live others searches with its own seed."""
        attrs = self._storage.get_study_system_attrs(self._study_id)
        others = [v for k, v in attrs.items() if k.startswith("worker:") and self._alive(v)]
        self._storage.set_study_system_attr(
            self._study_id, f"worker:{self.token}", self._worker_info()
        )
        if others:
            seq = np.random.SeedSequence([self.strategy.seed, len(attrs)])
            seed = int(seq.generate_state(1)[0])
            log.info("joining %d live worker(s): searching with seed %d", len(others), seed)
            self.strategy.reseed(seed)

    def _trials(self) -> list[FrozenTrial]:
        assert self._study is not None
        return self._study.get_trials(deepcopy=False)

    def _trial_id(self, number: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    @staticmethod
    def _finished(t: FrozenTrial) -> bool:
        return "result" in t.user_attrs and t.state in (TrialState.COMPLETE, TrialState.FAIL)

    def _fail(self, number: int, **attrs: Any) -> None:
        try:
            trial_id = self._trial_id(number)
            for k, v in attrs.items():
                self._storage.set_trial_user_attr(trial_id, k, v)
            self._storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            pass  # another worker finished or failed it first

    def _trial_alive(self, t: FrozenTrial) -> bool:
        """Is this RUNNING trial's worker alive (see storage.py)?"""
        worker = t.user_attrs.get("worker")
        if worker is None:  # being created right now by some worker (attrs not written yet)
            started = t.datetime_start.timestamp() if t.datetime_start else 0.0
            return time.time() - started < CREATING_SECONDS
        if worker.get("token") == self.token:
            return True
        if worker.get("host") == self.host:
            return process_alive(worker)
        if self.heartbeat:  # fail_lost_heartbeats has failed it if its heartbeat stopped
            return True
        return time.time() - float(worker.get("time", 0)) < self.stale_after

    def _fail_stale(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Fail the RUNNING trials of dead workers; the trials without them."""
        kept = []
        for t in trials:
            if t.state == TrialState.RUNNING and not self._trial_alive(t):
                log.warning("trial %d was left running by a dead worker; failing it", t.number)
                self._fail(t.number, stale=True)
            else:
                kept.append(t)
        return kept

    def records(self) -> list[TrialRecord]:
        """Every finished trial, in trial order."""
        self.open()
        out = []
        for t in self._trials():
            if self._finished(t):
                out.append(
                    TrialRecord(
                        t.number,
                        t.user_attrs["genotype"],
                        Result.from_dict(t.user_attrs["result"]),
                        t.user_attrs["result"].get("flops"),
                    )
                )
        return out

    # -- the loop --------------------------------------------------------------------------------

    def run(self, n_trials: int, progress: Progress | None = None) -> list[TrialRecord]:
        """Run until the storage holds n_trials finished trials (counting earlier runs)."""
        study = self.open()
        fail_lost_heartbeats(study)
        self._fail_stale(self._trials())
        self._register()
        try:
            return self._loop(study, n_trials, progress)
        finally:  # a worker that stopped (done, crashed, interrupted) no longer counts as live
            info = {**self._worker_info(), "finished": True}
            self._storage.set_study_system_attr(self._study_id, f"worker:{self.token}", info)

    def _standing(self, study: optuna.Study, n_trials: int) -> tuple[int, str]:
        """Finished trials, and whether to "go" on, "wait" for other workers or "stop"."""
        fail_lost_heartbeats(study)
        trials = self._fail_stale(self._trials())
        done = sum(self._finished(t) for t in trials)
        # live claims of other workers (a trial without a genotype yet claims nothing)
        claims = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and "genotype" in t.user_attrs
            and t.user_attrs["worker"].get("token") != self.token
        ]
        if done >= n_trials:
            return done, "stop"
        if done + len(claims) < n_trials:
            return done, "go"
        # enough claims to finish; wait for them where a dead claimer would be noticed
        if self.heartbeat or all(t.user_attrs["worker"].get("host") == self.host for t in claims):
            return done, "wait"
        return done, "stop"

    def _loop(
        self, study: optuna.Study, n_trials: int, progress: Progress | None
    ) -> list[TrialRecord]:
        records = self.records()
        # keyed by isomorphism class: a query is the first evaluation of a class
        known: dict[str, Result] = {self._class_key(r.genotype): r.result for r in records}
        best: TrialRecord | None = self._best(records)
        in_a_row = 0
        look = True  # look at the storage again (after anything that may have changed it)
        done = len(records)
        while True:
            if look:
                done, verdict = self._standing(study, n_trials)
                if verdict == "stop":
                    break
                if verdict == "wait":
                    time.sleep(POLL_SECONDS)
                    continue
                look = False
            genotype = self.strategy.ask()
            key = self._class_key(genotype)
            if key in known:  # class evaluated before (this run, an earlier run, another worker)
                self.strategy.tell(genotype, known[key])
                in_a_row += 1
                if in_a_row >= MAX_KNOWN_IN_A_ROW:
                    log.warning("the strategy keeps proposing evaluated genotypes; stopping early")
                    break
                continue
            in_a_row = 0
            look = True
            trial = self._claim(study, genotype)
            if trial is None:
                stored = self._stored(key)
                if stored is not None:
                    known[key] = stored
                    self.strategy.tell(genotype, stored)
                continue  # a live worker holds it: propose another
            record = self._evaluate(study, trial, genotype)
            known[key] = record.result
            self._write_trials_csv()
            self.strategy.tell(genotype, record.result)
            if best is None or self._better(record, best):
                best = record
            if progress is not None:
                progress(done + 1, n_trials, record, best)
        self._write_trials_csv()
        return self.records()

    def _claim(self, study: optuna.Study, genotype: Genotype) -> optuna.Trial | None:
        with warnings.catch_warnings():  # heartbeats outside study.optimize are ours to keep
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            trial = study.ask()
        record_heartbeat(self._storage, self._trial_id(trial.number))  # before any claim
        key = self._class_key(genotype)
        trial.set_user_attr("worker", self._worker_info())  # first: rivals see an owner
        trial.set_user_attr("genotype", genotype.to_str())
        # First visible claim wins: a claim yields to any other claim it can see once its own
        # key is written. Two claims racing may both yield (the genotype stays unclaimed and
        # can be proposed again), but two can never both proceed.
        rivals = [
            t
            for t in self._trials()
            if self._trial_class(t) == key
            and t.number != trial.number
            and (self._finished(t) or t.state == TrialState.RUNNING)
        ]
        rivals = self._fail_stale(rivals)
        if rivals:
            self._fail(trial.number, duplicate_of=min(t.number for t in rivals))
            return None
        return trial

    def _stored(self, key: str) -> Result | None:
        for t in self._trials():
            if self._trial_class(t) == key and self._finished(t):
                return Result.from_dict(t.user_attrs["result"])
        return None

    def _class_key(self, genotype: Genotype | str) -> str:
        """The genotype's isomorphism class (`SearchSpace.canonical_key`), cached by string."""
        text = genotype if isinstance(genotype, str) else genotype.to_str()
        if text not in self._classes:
            g = Genotype.from_str(text) if isinstance(genotype, str) else genotype
            self._classes[text] = self.strategy.space.canonical_key(g)
        return self._classes[text]

    def _trial_class(self, t: FrozenTrial) -> str | None:
        text = t.user_attrs.get("genotype")
        return None if text is None else self._class_key(text)

    def _evaluate(
        self, study: optuna.Study, trial: optuna.Trial, genotype: Genotype
    ) -> TrialRecord:
        with beating(self._storage, self._trial_id(trial.number)):
            try:
                result = self.evaluator.evaluate(genotype)
            except BaseException as err:
                # not a result: the genotype is evaluated again on resume
                self._fail(trial.number, error=f"{type(err).__name__}: {err}"[:500])
                raise
            given = result.metrics.get("flops")
            flops = (
                int(given) if given is not None and math.isfinite(given) else self._flops(genotype)
            )
            final = self.final_params(genotype) if self.final_params else None
        try:
            self._tell(study, trial, result, flops, final)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # failed by another worker that saw no heartbeat: the strategy keeps the result
            log.warning("trial %d was failed by another worker while it ran", trial.number)
        return TrialRecord(trial.number, genotype.to_str(), result, flops)

    def _tell(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        result: Result,
        flops: int | None,
        final: int | None,
    ) -> None:
        # `result` is what resume reads; the rest is the dashboard's view of it
        trial.set_user_attr("result", {**result.to_dict(), "flops": flops})
        trial.set_user_attr("metrics", {k: float(v) for k, v in result.metrics.items()})
        trial.set_user_attr("num_params", None if final is None else int(final))
        trial.set_user_attr("proxy_num_params", result.num_params)
        trial.set_user_attr("flops", flops)
        value = result.value(self.objective)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if result.ok and math.isfinite(value):
                values = [value, float(result.num_params)] if self.multi else [value]
                study.tell(trial, values)
            else:
                study.tell(trial, state=TrialState.FAIL)

    def _flops(self, genotype: Genotype) -> int | None:
        if self.flops is None:
            return None
        key = genotype.to_str()
        if key not in self._flops_cache:
            self._flops_cache[key] = int(self.flops(genotype))
        return self._flops_cache[key]

    # -- outputs ---------------------------------------------------------------------------------

    def _signed(self, record: TrialRecord) -> float:
        value = record.result.value(self.objective)
        if not record.result.ok or math.isnan(value):
            return -math.inf
        return value if self.direction == "maximize" else -value

    def _better(self, a: TrialRecord, b: TrialRecord) -> bool:
        return self._signed(a) > self._signed(b)

    def _best(self, records: list[TrialRecord]) -> TrialRecord | None:
        ok = [r for r in records if math.isfinite(self._signed(r))]
        return max(ok, key=self._signed) if ok else None

    def _write_trials_csv(self) -> None:
        records = self.records()
        metric_keys: list[str] = []
        for r in records:
            # flops has its own column (filled from the metric when the evaluator gives one)
            metric_keys.extend(k for k in r.result.metrics if k not in metric_keys and k != "flops")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["trial", "genotype", "status", "num_params", "flops", "seconds", *metric_keys]
        )
        for r in records:
            writer.writerow(
                [
                    r.number,
                    r.genotype,
                    r.status,
                    r.result.num_params,
                    "" if r.flops is None else r.flops,
                    f"{r.result.seconds:.3f}",
                    *(
                        repr(r.result.metrics[k]) if k in r.result.metrics else ""
                        for k in metric_keys
                    ),
                ]
            )
        atomic_write_text(self.run_dir / "trials.csv", buffer.getvalue())

    def _entry(self, record: TrialRecord) -> dict[str, Any]:
        g = Genotype.from_str(record.genotype)
        return {
            "trial": record.number,
            "genotype": record.genotype,
            "metrics": dict(record.result.metrics),
            "num_params": self.final_params(g) if self.final_params else record.result.num_params,
            "flops": self._flops(g) if record.flops is None else record.flops,
            "search_num_params": record.result.num_params,
        }

    def summary(self, top_k: int = 5, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write summary.json and topk/*.json; returns the summary."""
        records = self.records()
        ranked = sorted(
            (r for r in records if math.isfinite(self._signed(r))), key=self._signed, reverse=True
        )
        top = [self._entry(r) for r in ranked[:top_k]]
        data: dict[str, Any] = {
            "settings": self.config,
            "objective": {"key": self.objective, "direction": self.direction},
            "trials": len(records),
            "failed": sum(not r.result.ok for r in records),
            "best": top[0] if top else None,
            "top_k": top,
        }
        if self.multi:
            data["pareto"] = [self._entry(r) for r in self._pareto(ranked)]
        data.update(extra or {})
        topk_dir = self.run_dir / "topk"
        for i, entry in enumerate(top, 1):
            g = Genotype.from_str(entry["genotype"])
            payload = {**g.to_dict(), "genotype": entry["genotype"], "rank": i, **entry}
            atomic_write_text(topk_dir / f"{i:02d}_{g.key}.json", json.dumps(payload, indent=2))
        atomic_write_text(self.run_dir / "summary.json", json.dumps(data, indent=2))
        return data

    def _pareto(self, ranked: list[TrialRecord]) -> list[TrialRecord]:
        front: list[TrialRecord] = []
        smallest = math.inf
        for r in ranked:  # best objective first: keep those smaller than every better one
            if r.result.num_params < smallest:
                front.append(r)
                smallest = r.result.num_params
        return front
