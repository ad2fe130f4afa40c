"""Studies: durable trials, exact resume after a crash or kill -9, concurrent workers, outputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from search_helpers import CrashAfter, ToyEvaluator, toy_space

from robnas.errors import ConfigError
from robnas.models import sizing
from robnas.search.study import Study
from robnas.strategies import make_strategy

TESTS = Path(__file__).resolve().parent
CONFIG = {"space": "toy", "strategy": "regularized_evolution", "seed": 0}


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("space")
    toy_space(folder)
    return folder


@pytest.fixture(scope="module")
def space(space_dir: Path):
    return toy_space(space_dir)


def strategy(space, seed: int = 0, name: str = "regularized_evolution"):
    kw = {"population_size": 6, "sample_size": 3} if name == "regularized_evolution" else {}
    return make_strategy(name, space, seed=seed, objective="score", **kw)


def sequence(study: Study) -> list[str]:
    return [r.genotype for r in study.records()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, space) -> list[str]:
    """An uninterrupted run of 10 trials."""
    study = Study(tmp_path_factory.mktemp("ref"), CONFIG, ToyEvaluator(space), strategy(space))
    study.run(10)
    return sequence(study)


def test_run_writes_trials_summary_and_topk(tmp_path: Path, space, reference: list[str]) -> None:
    evaluator = ToyEvaluator(space)
    study = Study(tmp_path, CONFIG, evaluator, strategy(space), flops=lambda g: 7)
    progress: list[int] = []
    study.run(10, progress=lambda done, total, rec, best: progress.append(done))
    assert progress == list(range(1, 11))
    assert sequence(study) == reference
    with open(tmp_path / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["genotype"] for r in rows] == reference
    assert list(rows[0])[:7] == [
        "trial", "genotype", "status", "num_params", "proxy_num_params", "flops", "seconds"
    ]  # fmt: skip
    assert rows[0]["flops"] == "7" and "score" in rows[0]
    summary = study.summary(top_k=3)
    scores = {k: evaluator.score(space.parse(k)) for k in reference}
    assert summary["best"]["genotype"] == max(scores, key=scores.get)
    assert summary["best"]["metrics"]["score"] == max(scores.values())
    assert [e["metrics"]["score"] for e in summary["top_k"]] == sorted(
        scores.values(), reverse=True
    )[:3]
    assert len(list((tmp_path / "topk").glob("*.json"))) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["settings"] == CONFIG
    assert json.loads((tmp_path / "config.json").read_text()) == CONFIG
    # the storage is a plain Optuna study (opens in optuna-dashboard)
    loaded = optuna.load_study(study_name="robnas", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.user_attrs["genotype"] for t in loaded.trials] == reference
    assert loaded.best_trial.user_attrs["genotype"] == summary["best"]["genotype"]


def test_crash_mid_run_then_resume_repeats_and_loses_nothing(
    tmp_path: Path, space, reference: list[str]
) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        Study(tmp_path, CONFIG, CrashAfter(space, 5), strategy(space)).run(10)
    assert len(Study(tmp_path, CONFIG, ToyEvaluator(space), strategy(space)).records()) == 5
    evaluator = ToyEvaluator(space)
    resumed = Study(tmp_path, CONFIG, evaluator, strategy(space))
    resumed.run(10)
    assert sequence(resumed) == reference  # continues exactly as if never interrupted
    assert evaluator.calls == reference[5:]  # no finished trial evaluated again
    failed = [t for t in resumed.open().trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and "simulated crash" in failed[0].user_attrs["error"]


def _worker_script(
    run: Path, space_dir: Path, trials: int, sleep: float, log: Path, seed: int
) -> str:
    return textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        from search_helpers import ToyEvaluator, toy_space
        from robnas.strategies import make_strategy
        from robnas.search.study import Study
        space = toy_space(Path({str(space_dir)!r}))
        evaluator = ToyEvaluator(space, sleep={sleep}, log=Path({str(log)!r}))
        strategy = make_strategy("regularized_evolution", space, seed={seed}, objective="score",
                                 population_size=6, sample_size=3)
        Study({str(run)!r}, {CONFIG!r}, evaluator, strategy).run({trials})
        """
    )


def _rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def test_kill_9_then_resume(tmp_path: Path, space_dir: Path, space, reference: list[str]) -> None:
    run = tmp_path / "run"
    log = tmp_path / "evaluated.txt"
    proc = subprocess.Popen([sys.executable, "-c", _worker_script(run, space_dir, 10, 0.4, log, 0)])
    try:
        deadline = time.time() + 120
        while _rows(run / "trials.csv") < 4 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = sequence(Study(run, CONFIG, ToyEvaluator(space), strategy(space)))
    assert 4 <= len(before) < 10
    evaluator = ToyEvaluator(space)
    resumed = Study(run, CONFIG, evaluator, strategy(space))
    resumed.run(10)
    assert sequence(resumed) == reference
    assert evaluator.calls == reference[len(before) :]
    claims = [t for t in resumed.open().trials if "genotype" in t.user_attrs]
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in claims)  # killed one: failed


def test_killed_right_after_claiming_then_resume(
    tmp_path: Path, space, reference: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at the first write after its claim is created, a worker leaves a trial that names
    its owner and genotype, so a resumed run fails it at once and continues exactly. (Created
    first and labelled after, the claim had no owner, counted as live for a minute, and the
    resumed run's last trial yielded to it: CI once saw the kill -9 test diverge so.)"""
    Study(tmp_path, CONFIG, ToyEvaluator(space), strategy(space)).run(5)
    doomed = Study(tmp_path, CONFIG, ToyEvaluator(space), strategy(space))
    real_info = doomed.worker.info
    # the same pid with another start time: a worker that has exited (its pid reused by us)
    monkeypatch.setattr(doomed.worker, "info", lambda: {**real_info(), "start": "exited"})

    def killed(*args: object) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr("robnas.search.study.record_heartbeat", killed)
    with pytest.raises(KeyboardInterrupt):
        doomed.run(10)
    monkeypatch.undo()
    evaluator = ToyEvaluator(space)
    resumed = Study(tmp_path, CONFIG, evaluator, strategy(space))
    resumed.run(10)
    assert sequence(resumed) == reference
    assert evaluator.calls == reference[5:]
    left = [t for t in resumed.open().trials if t.user_attrs.get("stale")]
    assert len(left) == 1 and left[0].user_attrs["genotype"] == reference[5]
    assert left[0].state == optuna.trial.TrialState.FAIL


def test_two_concurrent_workers_never_duplicate(tmp_path: Path, space_dir: Path, space) -> None:
    run = tmp_path / "run"
    Study(run, CONFIG, ToyEvaluator(space), strategy(space)).open()  # created once, then shared
    logs = [tmp_path / "w0.txt", tmp_path / "w1.txt"]
    procs = [
        subprocess.Popen([sys.executable, "-c", _worker_script(run, space_dir, 16, 0.2, log, 0)])
        for log in logs
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    evaluated = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
    assert len(evaluated) == len(set(evaluated)) == 16  # no genotype evaluated twice
    assert all(log.exists() and log.read_text() for log in logs)  # both workers did work
    records = Study(run, CONFIG, ToyEvaluator(space), strategy(space)).records()
    assert sorted(r.genotype for r in records) == sorted(evaluated)


def test_a_run_dir_of_another_config_is_refused(tmp_path: Path, space) -> None:
    Study(tmp_path, CONFIG, ToyEvaluator(space), strategy(space)).run(2)
    before = sorted(p.name for p in tmp_path.iterdir())
    other = {**CONFIG, "seed": 1}
    with pytest.raises(ConfigError, match="different configuration.*seed"):
        Study(tmp_path, other, ToyEvaluator(space), strategy(space, seed=1)).run(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # settings that do not change the search (e.g. the trial count) may differ on resume
    Study(tmp_path, {**CONFIG, "trials": 9}, ToyEvaluator(space), strategy(space)).run(3)


def test_journal_storage_and_more_trials_on_resume(tmp_path: Path, space) -> None:
    url = f"journal:{tmp_path / 'shared' / 'study.log'}"
    first = Study(tmp_path / "run", CONFIG, ToyEvaluator(space), strategy(space), storage=url)
    first.run(4)
    evaluator = ToyEvaluator(space)
    more = Study(tmp_path / "run", CONFIG, evaluator, strategy(space), storage=url)
    more.run(7)
    assert len(more.records()) == 7 and len(evaluator.calls) == 3
    assert not (tmp_path / "run" / "study.db").exists()


@pytest.mark.parametrize("name", ["local_search", "tpe", "nsga2", "surrogate"])
def test_resume_is_exact_for_other_strategies(tmp_path: Path, space, name: str) -> None:
    config = {**CONFIG, "strategy": name}
    ref = Study(tmp_path / "ref", config, ToyEvaluator(space), strategy(space, name=name))
    ref.run(12)
    with pytest.raises(RuntimeError):
        Study(tmp_path / "run", config, CrashAfter(space, 10), strategy(space, name=name)).run(12)
    evaluator = ToyEvaluator(space)
    resumed = Study(tmp_path / "run", config, evaluator, strategy(space, name=name))
    resumed.run(12)
    assert sequence(resumed) == sequence(ref)
    assert len(evaluator.calls) == 2
    if name == "nsga2":
        assert resumed.summary()["pareto"]


def test_trials_csv_has_one_flops_column_when_the_evaluator_reports_flops(tmp_path, space):
    from robnas.result import Result

    class WithFlops:
        def evaluate(self, genotype):
            return Result({"score": 1.0, "flops": 123.0}, 10, 0.0)

    study = Study(tmp_path, CONFIG, WithFlops(), strategy(space))
    study.run(2)
    header = next(csv.reader((tmp_path / "trials.csv").open()))
    assert header.count("flops") == 1
    assert next(csv.DictReader((tmp_path / "trials.csv").open()))["flops"] == "123"


def test_trials_carry_dashboard_attributes(tmp_path: Path, space) -> None:
    evaluator = ToyEvaluator(space)
    proxy = lambda g: sizing.num_params(space, g, space.resolve_macro())  # noqa: E731
    study = Study(
        tmp_path, CONFIG, evaluator, strategy(space),
        flops=lambda g: 7, final_params=lambda g: 99, proxy_params=proxy,
    )  # fmt: skip
    study.run(3)
    # what optuna-dashboard shows: read back through Optuna's public API only
    loaded = optuna.load_study(study_name="robnas", storage=f"sqlite:///{tmp_path / 'study.db'}")
    for trial, key in zip(loaded.trials, evaluator.calls):
        g = space.parse(key)
        assert trial.user_attrs["genotype"] == key
        assert trial.user_attrs["metrics"] == {"score": evaluator.score(g)}
        assert trial.user_attrs["num_params"] == 99  # at the final size
        assert trial.user_attrs["proxy_num_params"] == proxy(g)
        assert trial.user_attrs["flops"] == 7
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [r["num_params"] for r in rows] == ["99"] * 3  # the same counts in trials.csv
    assert [r["proxy_num_params"] for r in rows] == [
        str(proxy(space.parse(k))) for k in evaluator.calls
    ]


def test_storage_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    from robnas.search import storage

    real = importlib.util.find_spec
    installed = {"psycopg2", "pymysql"}
    drivers = {"psycopg", "psycopg2", "pymysql", "MySQLdb"}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            (object() if name in installed else None) if name in drivers else real(name, *a)
        ),
    )
    # a bare scheme names an installed driver (SQLAlchemy's default one differs by version)
    assert storage._with_driver("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert storage._with_driver("mysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert storage._with_driver("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    installed.clear()
    with pytest.raises(ConfigError, match=r"robnas\[postgres\]"):
        storage.make_storage("postgresql://u@h/db")
    assert storage.is_server("mysql+pymysql://u@h/db") and not storage.is_server("x.journal")
    monkeypatch.setenv("ROBNAS_HEARTBEAT", "soon")
    with pytest.raises(ConfigError, match="ROBNAS_HEARTBEAT"):
        storage.heartbeat_seconds()


def test_an_unreachable_storage_is_one_line_and_writes_nothing(tmp_path: Path, space) -> None:
    url = "postgresql://nobody@/robnas?host=/nonexistent/socket/dir"
    study = Study(tmp_path / "run", CONFIG, ToyEvaluator(space), strategy(space), storage=url)
    with pytest.raises(ConfigError, match="storage") as err:
        study.run(2)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()
