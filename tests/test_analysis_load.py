"""Reading a study run for analysis (analysis/load.py): trials, settings, robust key, benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import make_run

from robnas.analysis.load import choose_robust_key, find_benchmark_dir, load_run
from robnas.errors import ConfigError


def test_robust_key_choice() -> None:
    cols = ["clean", "fgsm@1", "pgd@1", "pgd20_acc"]
    assert choose_robust_key(cols, ["pgd@1"])[0] == "pgd@1"
    assert choose_robust_key(cols, ["pgd@1/255"])[0] == "pgd@1"
    assert choose_robust_key(cols, ["num_params"])[0] == "pgd20_acc"
    assert choose_robust_key(["clean", "fgsm@1", "pgd@1"], [])[0] == "fgsm@1"
    with pytest.raises(ConfigError):
        choose_robust_key(["clean", "density"], [])


def test_failed_trials_are_left_out(tmp_path: Path) -> None:
    status = ["ok"] * 50 + ["failed"] * 10
    data = load_run(make_run(tmp_path / "run", effect="none", status=status))
    assert data.n == 50 and data.dropped == 10
    assert data.robust.max() > 1  # fractions were turned into percent
    assert data.settings["space"] == "darts" and not data.tabular


def test_settings_objective_and_mode_are_read(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none")
    settings = {"mode": "tabular", "space": "darts", "objective": "clean_acc"}
    (run / "config.json").write_text(json.dumps(settings))
    data = load_run(run)
    assert data.robust_key == "clean_acc" and data.robust_reason == "the study's objective"
    assert data.tabular
    (run / "config.json").unlink()  # the trials alone still analyse: pgd20_acc by default
    assert load_run(run).robust_key == "pgd20_acc"


def test_space_of_the_trials_must_be_known(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none")
    frame = pd.read_csv(run / "trials.csv")
    frame["genotype"] = "nospace:|x~0|"
    frame.to_csv(run / "trials.csv", index=False)
    (run / "config.json").write_text(json.dumps({"space": "nospace"}))
    with pytest.raises(ConfigError, match="search space"):
        load_run(run)


def test_benchmark_dir_from_settings_then_robnas_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = tmp_path / "data" / "nb201-robustness"
    bench.mkdir(parents=True)
    (bench / "meta.json").write_text("{}")
    monkeypatch.delenv("ROBNAS_DATA", raising=False)
    assert find_benchmark_dir({"benchmark": str(bench)}) == bench
    assert find_benchmark_dir({"data_dir": str(tmp_path / "data")}) is None  # not a benchmark key
    monkeypatch.setenv("ROBNAS_DATA", str(tmp_path / "data"))
    assert find_benchmark_dir({}) == bench
