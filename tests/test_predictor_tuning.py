"""experiments/predictor_tuning.py: the summary groups runs by config, objective and seed (two
development sets side by side), and a CSV of other columns is refused before any search."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from experiment_helpers import load_experiment


def test_summary_keeps_each_seed_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tuning = load_experiment("predictor_tuning", monkeypatch)
    path = tmp_path / "predictor_tuning.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(tuning.FIELDS)
        for seed, values in (("1000", [69.0, 69.2]), ("2000", [68.2, 69.2, 69.2])):
            for run, v in enumerate(values):
                writer.writerow(["polish", '{"stall": 5}', "fgsm@1", run, 68.0, v, 2.0, seed])
    out = tmp_path / "predictor_tuning.md"
    tuning.summarize(path, out)
    lines = [line for line in out.read_text().splitlines() if line.startswith("| polish")]
    assert lines == [
        '| polish | `{"stall": 5}` | fgsm@1 | 1000 | 2 | 68.00 (0.00) | 69.10 (0.14) | 2.0 |',
        '| polish | `{"stall": 5}` | fgsm@1 | 2000 | 3 | 68.00 (0.00) | 68.87 (0.58) | 2.0 |',
    ]


def test_a_csv_of_other_columns_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tuning = load_experiment("predictor_tuning", monkeypatch)
    old = "config,options,objective,run,best_50,best_100,seconds\n"
    (tmp_path / "predictor_tuning.csv").write_text(old)
    argv = ["predictor_tuning.py", "--benchmark", str(tmp_path / "missing"), "--config", "a={}"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        tuning.main()
    assert exit_.value.code == 2
    assert "pass another --out" in capsys.readouterr().err
    assert (tmp_path / "predictor_tuning.csv").read_text() == old


def test_signals_reach_every_config_and_are_named_in_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path
) -> None:
    from experiment_helpers import convs_table

    tuning = load_experiment("predictor_tuning", monkeypatch)
    argv = ["predictor_tuning.py", "--benchmark", str(data_root / "nb201-robustness")]
    argv += ["--config", "a={}", "--runs", "1", "--queries", "12", "--objectives", "clean"]
    argv += ["--out", str(tmp_path), "--signals", str(convs_table(tmp_path / "c.csv"))]
    monkeypatch.setattr(sys, "argv", argv)
    built, original = [], tuning.make_strategy

    def make_strategy(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(tuning, "make_strategy", make_strategy)
    assert tuning.main() == 0
    with open(tmp_path / "predictor_tuning.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["options"] == '{"signals": "convs"}' and float(row["best_100"]) > 80
    (strategy,) = built
    assert strategy.cheap_evaluations > 12  # the strategy computed (looked up) the signals
    assert strategy.cheap_seconds == pytest.approx(0.5 * strategy.cheap_evaluations)
