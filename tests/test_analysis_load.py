"""Reading a study run for analysis (analysis/load.py): trials, settings, robust key, benchmark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import make_run, supernet_settings, tabular_settings

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
    key, reason = choose_robust_key(["pgd10_acc", "pgd20_acc"], ["jac_norm"], "pgd10_acc")
    assert key == "pgd10_acc" and "PGD-10" in reason


def test_failed_trials_are_left_out(tmp_path: Path) -> None:
    status = ["ok"] * 50 + ["failed"] * 10
    data = load_run(make_run(tmp_path / "run", effect="none", status=status))
    assert data.n == 50 and data.dropped == 10
    assert data.robust.max() > 1  # fractions were turned into percent


def test_settings_objective_and_mode_are_read(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none")
    (run / "config.json").write_text(supernet_settings(objective="clean_acc").to_json())
    data = load_run(run)
    assert data.robust_key == "clean_acc" and data.robust_reason == "the study's objective"
    assert not data.tabular and data.settings.space == "darts"
    (run / "config.json").write_text(
        supernet_settings(objective="jac_norm", direction="minimize").to_json()
    )
    assert load_run(run).robust_key == "pgd20_acc"  # the robust metric of its attack_steps
    tabular = tabular_settings(space="darts", benchmark="b")
    (run / "config.json").write_text(tabular.to_json())
    assert load_run(run).tabular
    (run / "config.json").unlink()  # not a robnas run without its settings
    with pytest.raises(ConfigError, match="no config.json"):
        load_run(run)


def test_settings_columns_of_the_trials_are_no_metrics(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none")
    frame = pd.read_csv(run / "trials.csv")
    frame.insert(4, "attack_steps", 20)  # RunDir writes the attack's settings on every row
    frame.to_csv(run / "trials.csv", index=False)
    data = load_run(run)
    assert "attack_steps" not in data.metrics and "jac_norm" in data.metrics


def test_genotypes_must_be_of_the_settings_space(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none")
    (run / "config.json").write_text(supernet_settings(space="nb201").to_json())
    with pytest.raises(ConfigError, match="trials.csv"):
        load_run(run)


def test_benchmark_dir_from_settings_then_robnas_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = tmp_path / "data" / "nb201-robustness"
    bench.mkdir(parents=True)
    (bench / "meta.json").write_text("{}")
    monkeypatch.delenv("ROBNAS_DATA", raising=False)
    tabular = tabular_settings(benchmark=str(bench))
    assert find_benchmark_dir(tabular) == bench
    assert find_benchmark_dir(tabular.replace(benchmark=str(tmp_path))) is None
    monkeypatch.setenv("ROBNAS_DATA", str(tmp_path / "data"))
    assert find_benchmark_dir(supernet_settings()) == bench
