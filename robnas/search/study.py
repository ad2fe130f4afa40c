"""The search loop: a strategy proposes, an evaluator scores, an Optuna storage keeps every trial.

The run directory's files (config.json, trials.csv rewritten atomically after every trial,
summary.json, topk/) are written through RunDir (rundir.py); the search pipeline writes the
final results with `write_outputs` (`Study.summary` does the same for a study used alone). The storage is `study.db` there
(SQLite) unless `storage=URL` names another (storage.py: a journal file, a database server).

Durability: a trial is committed to the storage before the strategy hears of it and before the
next trial starts. Each Optuna trial carries, as user attributes (what optuna-dashboard shows),
its owner (`worker`), the genotype (`genotype`, the canonical string) and, once finished, the
full result (`result`, what resume reads), `metrics`, `num_params` (at the final size, when the
search knows it), `proxy_num_params` (at the scored size, when smaller) and `flops`; its value
is the objective (and the parameter count for NSGA-II).

Resume: a fresh strategy with the same seed is run again from the start; whenever it proposes
a genotype the storage already holds, it is told the stored result instead of evaluating, so the
strategy reaches exactly the state it had and continues identically; no finished trial is
repeated or lost. A trial left RUNNING by a dead worker (workers.py says how one is told) is
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

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from robnas.genotype import Genotype
from robnas.result import Result
from robnas.search.rundir import RunDir, TrialRecord, trial_row, write_outputs
from robnas.search.storage import beating, fail_lost_heartbeats, make_storage, record_heartbeat
from robnas.search.workers import Worker
from robnas.strategies.base import Strategy

if TYPE_CHECKING:
    from robnas.evaluators.base import Evaluator

log = logging.getLogger(__name__)

STUDY_NAME = "robnas"
#: A proposal loop answered only from memory this many times in a row ends the run early.
MAX_KNOWN_IN_A_ROW = 10_000
#: Seconds between looks at the storage while waiting for other workers' claims.
POLL_SECONDS = 1.0


Progress = Callable[[int, int, "TrialRecord | None", "TrialRecord | None"], None]


class Study:
    def __init__(
        self,
        run_dir: str | Path,
        config: Mapping[str, Any] | Any,
        evaluator: Evaluator,
        strategy: Strategy,
        storage: str | None = None,
        *,
        flops: Callable[[Genotype], int] | None = None,
        final_params: Callable[[Genotype], int] | None = None,
        proxy_params: Callable[[Genotype], int] | None = None,
        stale_after: float = 6 * 3600.0,
    ) -> None:
        self.run_dir = Path(run_dir)
        # a settings value (its config.json dict) or a plain dict
        raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        self.config: dict[str, Any] = json.loads(json.dumps(raw))
        self.evaluator = evaluator
        self.strategy = strategy
        self.storage_given = storage is not None
        self.storage_url = storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"
        self.flops = flops
        self.final_params = final_params
        self.proxy_params = proxy_params
        self.objective = strategy.objective
        self.direction = strategy.direction
        self.multi = strategy.multi_objective
        self.worker = Worker(stale_after=stale_after)
        self._flops_cache: dict[str, int] = {}
        self._classes: dict[str, str] = {}  # genotype string -> isomorphism class key
        self._study: optuna.Study | None = None

    # -- storage ---------------------------------------------------------------------------------

    def open(self) -> optuna.Study:
        if self._study is not None:
            return self._study
        # a storage named by the user is opened first: a bad URL writes nothing
        storage = make_storage(self.storage_url) if self.storage_given else None
        RunDir(self.run_dir).init(self.config)
        storage = storage or make_storage(self.storage_url)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = [self.direction, "minimize"] if self.multi else [self.direction]
        self._study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            directions=directions,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        self.worker.attach(storage, storage.get_study_id_from_name(STUDY_NAME))
        return self._study

    def _trials(self) -> list[FrozenTrial]:
        assert self._study is not None
        return self._study.get_trials(deepcopy=False)

    @staticmethod
    def _finished(t: FrozenTrial) -> bool:
        return "result" in t.user_attrs and t.state in (TrialState.COMPLETE, TrialState.FAIL)

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
                        t.user_attrs.get("num_params"),
                        t.user_attrs.get("proxy_num_params"),
                    )
                )
        return out

    # -- the loop --------------------------------------------------------------------------------

    def run(self, n_trials: int, progress: Progress | None = None) -> list[TrialRecord]:
        """Run until the storage holds n_trials finished trials (counting earlier runs)."""
        study = self.open()
        fail_lost_heartbeats(study)
        self.worker.fail_stale(self._trials())
        self.worker.register(self.strategy)
        try:
            return self._loop(study, n_trials, progress)
        finally:
            self.worker.finish()

    def _standing(self, study: optuna.Study, n_trials: int) -> tuple[int, str]:
        """Finished trials, and whether to "go" on, "wait" for other workers or "stop"."""
        fail_lost_heartbeats(study)
        trials = self.worker.fail_stale(self._trials())
        done = sum(self._finished(t) for t in trials)
        # live claims of other workers (a trial without a genotype yet claims nothing)
        claims = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and "genotype" in t.user_attrs
            and not self.worker.owns(t)
        ]
        if done >= n_trials:
            return done, "stop"
        if done + len(claims) < n_trials:
            return done, "go"
        # enough claims to finish; wait for them where a dead claimer would be noticed
        if self.worker.heartbeat or all(self.worker.here(t) for t in claims):
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
            trial = self._claim(study, genotype, n_trials)
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

    def _claim(self, study: optuna.Study, genotype: Genotype, n_trials: int) -> optuna.Trial | None:
        trial = self.worker.claim(study, genotype.to_str())  # owner and key in one write
        record_heartbeat(self.worker.storage, self.worker.trial_id(trial.number))
        key = self._class_key(genotype)
        # First visible claim wins: a claim yields to any other claim it can see once its own
        # key is written. Two claims racing may both yield (the genotype stays unclaimed and
        # can be proposed again), but two can never both proceed.
        trials = self.worker.fail_stale(self._trials())  # one read serves both checks
        rivals = [
            t
            for t in trials
            if self._trial_class(t) == key
            and t.number != trial.number
            and (self._finished(t) or t.state == TrialState.RUNNING)
        ]
        if rivals:
            self.worker.fail(trial.number, duplicate_of=min(t.number for t in rivals))
            return None
        # Two workers may both have seen room for one more trial: claims are ordered by trial
        # number, and a claim with n_trials finished or earlier live claims ahead of it yields.
        # Every earlier RUNNING trial counts, whatever its attrs (skipping unlabelled ones let
        # two proceed: 11 of 10 trials on PostgreSQL, before claims were created labelled).
        ahead = sum(
            self._finished(t) or (t.state == TrialState.RUNNING and t.number < trial.number)
            for t in trials
        )
        if ahead >= n_trials:
            self.worker.fail(trial.number, surplus=True)
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
        with beating(self.worker.storage, self.worker.trial_id(trial.number)):
            try:
                result = self.evaluator.evaluate(genotype)
            except BaseException as err:
                # not a result: the genotype is evaluated again on resume
                self.worker.fail(trial.number, error=f"{type(err).__name__}: {err}"[:500])
                raise
            given = result.metrics.get("flops")
            flops = (
                int(given) if given is not None and math.isfinite(given) else self._flops(genotype)
            )
            final = int(self.final_params(genotype)) if self.final_params else None
            proxy = int(self.proxy_params(genotype)) if self.proxy_params else None
        record = TrialRecord(trial.number, genotype.to_str(), result, flops, final, proxy)
        try:
            self._tell(study, trial, record)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # failed by another worker that saw no heartbeat: the strategy keeps the result
            log.warning("trial %d was failed by another worker while it ran", trial.number)
        return record

    def _tell(self, study: optuna.Study, trial: optuna.Trial, record: TrialRecord) -> None:
        result = record.result
        # `result` is what resume reads; the rest is the dashboard's view of the trial
        trial.set_user_attr("result", {**result.to_dict(), "flops": record.flops})
        trial.set_user_attr("metrics", {k: float(v) for k, v in result.metrics.items()})
        trial.set_user_attr("num_params", record.num_params)
        trial.set_user_attr("proxy_num_params", record.proxy_num_params)
        trial.set_user_attr("flops", record.flops)
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

    def _score(self, record: TrialRecord) -> float:
        return self.strategy.score(record.result)

    def _better(self, a: TrialRecord, b: TrialRecord) -> bool:
        return self._score(a) > self._score(b)

    def _best(self, records: list[TrialRecord]) -> TrialRecord | None:
        ok = [r for r in records if math.isfinite(self._score(r))]
        return max(ok, key=self._score) if ok else None

    def _write_trials_csv(self) -> None:
        RunDir(self.run_dir).write_trials(trial_row(r) for r in self.records())

    def summary(self, top_k: int = 5) -> dict[str, Any]:
        """Write trials.csv, summary.json and topk/ (`write_outputs`); returns the summary."""
        return write_outputs(
            self.run_dir,
            self.config,
            self.records(),
            score=self.strategy.score,
            multi_objective=self.multi,
            top_k=top_k,
            final_params=self.final_params,
            proxy_params=self.proxy_params,
            flops=self._flops,  # type: ignore[arg-type]
            objective=(self.objective, self.direction),
        )


__all__ = ["Progress", "Study", "TrialRecord"]
