"""Shared studies on a real PostgreSQL server: concurrent `robnas search` workers, kill -9, resume.

The server is a throwaway one per test session (tests/conftest.py: `postgres_server`); without
the Debian `postgresql` binaries or the driver these tests skip and say why, except in CI, which
installs both and sets ROBNAS_REQUIRE_POSTGRES=1 to make a skip a failure.
"""

from __future__ import annotations

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
from optuna.trial import TrialState
from search_helpers import ToyEvaluator, toy_space

from robnas.search.study import Study
from robnas.strategies import make_strategy

pytestmark = pytest.mark.postgres

TRIALS = 10


def _worker(host: str, log: Path, argv: list[str], hang_at: int = 0) -> subprocess.Popen:
    """`robnas search ARGV` in a process that plays machine `host`: its hostname is patched, so
    workers cannot see each other's pids and only the heartbeat tells a dead one. Each
    evaluation is logged ("start"/"end" + genotype) and takes 0.3 s; the `hang_at`-th one
    never returns (the worker is stuck mid-trial until it is killed)."""
    script = textwrap.dedent(
        f"""
        import socket, sys, time
        socket.gethostname = lambda: {host!r}
        from robnas.evaluators.tabular import TabularEvaluator
        from robnas.cli import main

        evaluate = TabularEvaluator.evaluate
        calls = 0

        def logged(self, genotype):
            global calls
            calls += 1
            with open({str(log)!r}, "a") as handle:
                handle.write("start " + genotype.to_str() + "\\n")
            time.sleep(3600 if calls == {hang_at} else 0.3)
            result = evaluate(self, genotype)
            with open({str(log)!r}, "a") as handle:
                handle.write("end " + genotype.to_str() + "\\n")
            return result

        TabularEvaluator.evaluate = logged
        sys.exit(main({[*argv, "--no-progress"]!r}))
        """
    )
    env = {**os.environ, "ROBNAS_HEARTBEAT": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script], env=env)


def _lines(log: Path, kind: str) -> list[str]:
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith(kind)]


def test_two_workers_kill_9_and_resume(postgres_url: str, data_root: Path, tmp_path: Path) -> None:
    search = [
        "search", "--space", "nb201", "--benchmark", str(data_root / "nb201-robustness"),
        "--objective", "fgsm@1", "--strategy", "regularized_evolution",
        "--trials", str(TRIALS), "--storage", postgres_url,
    ]  # fmt: skip
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "c")}
    a = _worker("host-a", logs["a"], [*search, "--out", str(tmp_path / "run-a")], hang_at=3)
    b = _worker("host-b", logs["b"], [*search, "--out", str(tmp_path / "run-b")])
    c = None
    try:
        deadline = time.time() + 180
        while len(_lines(logs["a"], "start")) < 3 and time.time() < deadline:
            assert a.poll() is None, "worker a ended before its stuck trial"
            time.sleep(0.1)
        hung = _lines(logs["a"], "start")[-1]
        os.kill(a.pid, signal.SIGKILL)  # mid-trial: its claim stays RUNNING in the database
        assert a.wait(timeout=60) == -signal.SIGKILL
        # a replacement machine resumes worker a's run directory (its config names the storage)
        c = _worker("host-c", logs["c"], ["search", "--resume", str(tmp_path / "run-a")])
        assert b.wait(timeout=300) == 0
        assert c.wait(timeout=300) == 0
    finally:
        for p in (a, b, c):
            if p is not None and p.poll() is None:
                p.kill()

    study = optuna.load_study(study_name="robnas", storage=postgres_url)
    finished = [t for t in study.trials if "result" in t.user_attrs]
    assert len(finished) == TRIALS  # the requested number of trials
    genotypes = [t.user_attrs["genotype"] for t in finished]
    assert len(set(genotypes)) == TRIALS  # none duplicated
    ended = [g for log in logs.values() for g in _lines(log, "end")]
    assert sorted(ended) == sorted(genotypes)  # none lost, none evaluated twice
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    # the killed worker's trial: failed through its lost heartbeat (not a pid: other "hosts")
    stuck = [
        t for t in study.trials if t.user_attrs.get("worker", {}).get("host") == "host-a"
        and t.state == TrialState.FAIL and "result" not in t.user_attrs
    ]  # fmt: skip
    assert [t.user_attrs["genotype"] for t in stuck] == [hung]
    assert "stale" not in stuck[0].user_attrs
    for run in ("run-a", "run-b"):  # each worker's own outputs see the whole study
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        assert summary["trials"] == TRIALS
        assert len((tmp_path / run / "trials.csv").read_text().splitlines()) == TRIALS + 1


def test_trial_attributes_read_back_through_optunas_public_api(
    postgres_url: str, tmp_path: Path
) -> None:
    space = toy_space(tmp_path)
    strategy = make_strategy(
        "regularized_evolution", space, seed=0, objective="score", population_size=6, sample_size=3
    )
    config = {"space": "toy", "strategy": "regularized_evolution", "seed": 0}
    evaluator = ToyEvaluator(space)
    Study(
        tmp_path / "run", config, evaluator, strategy, postgres_url,
        flops=lambda g: 7, final_params=lambda g: 1000, proxy_params=lambda g: 10,
    ).run(3)  # fmt: skip
    trials = optuna.load_study(study_name="robnas", storage=postgres_url).trials
    assert len(trials) == 3
    for t, key in zip(trials, evaluator.calls):
        assert t.user_attrs["genotype"] == key
        assert t.user_attrs["metrics"] == {"score": evaluator.score(space.parse(key))}
        assert t.user_attrs["num_params"] == 1000
        assert t.user_attrs["proxy_num_params"] == 10
        assert t.user_attrs["flops"] == 7
        assert t.value == t.user_attrs["metrics"]["score"]
