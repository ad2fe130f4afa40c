"""experiments/nb201_nas_table.py: sample standard deviations, Welch tests, best-so-far curves,
and resuming / merging parts run in parallel (on synthetic rows; no benchmark needed)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pytest
from experiment_helpers import convs_table, load_experiment
from scipy import stats


class FakeBench:
    def value(self, genotype, key: str) -> float:
        return 0.5


def rows_for(strategy: str, values: list[float]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for run, v in enumerate(values):
        curve = np.linspace(50, 100 * v, 4)
        out.append(
            {
                "objective": "fgsm@1",
                "strategy": strategy,
                "run": run,
                "genotype": "nb201:|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "optimum": int(v == 0.69),
                "classes": 4,
                "asks": 5,
                "cheap_evaluations": 0,
                "seconds": 1.0,
                "clean": 0.9,
                "fgsm@1": v,
                "pgd@1": 0.4,
                "aa_apgd-ce@1": 0.2,
                "aa_square@1": 0.6,
                "best_so_far": " ".join(f"{c:.2f}" for c in curve),
            }
        )
    return out


def args_for(out: Path, strategies: list[str]) -> argparse.Namespace:
    return argparse.Namespace(
        runs=3,
        queries=4,
        objectives=["fgsm@1"],
        strategies=strategies,
        budget=None,
        out=out,
        resume=False,
    )


def test_table_uses_sample_sds_and_cites_welch_tests(monkeypatch, tmp_path: Path) -> None:
    table = load_experiment("nb201_nas_table", monkeypatch)
    mine, other = [0.69, 0.69, 0.68], [0.66, 0.67, 0.68]
    rows = rows_for("predictor", mine) + rows_for("random", other)
    args = args_for(tmp_path, ["random", "predictor"])
    optima = {"fgsm@1": (0.692, "nb201:|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")}
    text = table.markdown(rows, args, FakeBench(), optima)
    sd = np.std(100 * np.array(mine), ddof=1)
    assert f"**{100 * np.mean(mine):.2f} +- {sd:.2f}**" in text
    assert "67%" in text  # found the optimum in 2 of 3 runs
    welch = table.welch(rows, args)
    t, p = stats.ttest_ind(100 * np.array(mine), 100 * np.array(other), equal_var=False)
    assert f"| {t:.2f} | {p:.2g} |" in welch
    at_half = np.mean([float(r["best_so_far"].split()[1]) for r in rows[:3]])
    assert f"| {at_half:.2f} |" in text
    table.plot(rows, args, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_resume_and_merge_keep_finished_runs(monkeypatch, tmp_path: Path) -> None:
    table = load_experiment("nb201_nas_table", monkeypatch)
    part = tmp_path / "part"
    table.write_csv(rows_for("predictor", [0.69, 0.68]), part)
    read = table.read_rows(part / "nb201_nas_table.csv")
    assert [r["run"] for r in read] == ["0", "1"]
    with open(part / "nb201_nas_table.csv", newline="") as handle:
        assert next(csv.reader(handle))[-1] == "best_so_far"
    assert table.read_rows(tmp_path / "missing.csv") == []


def test_merge_needs_nothing_run_when_every_part_is_done(
    monkeypatch, tmp_path: Path, data_root: Path
) -> None:
    table = load_experiment("nb201_nas_table", monkeypatch)
    main_out, part = tmp_path / "main", tmp_path / "part"
    table.write_csv(rows_for("random", [0.66, 0.67, 0.65]), main_out)
    table.write_csv(rows_for("predictor", [0.69, 0.69, 0.68]), part)
    monkeypatch.setattr(
        "sys.argv",
        [
            "nb201_nas_table.py",
            "--runs",
            "3",
            "--queries",
            "4",
            "--objectives",
            "fgsm@1",
            "--strategies",
            "random",
            "predictor",
            "--out",
            str(main_out),
            "--resume",
            "--merge",
            str(part / "nb201_nas_table.csv"),
            "--benchmark",
            str(data_root / "nb201-robustness"),
        ],
    )
    monkeypatch.setattr(table, "search_once", lambda *a, **k: pytest.fail("ran a search"))
    assert table.main() == 0
    merged = table.read_rows(main_out / "nb201_nas_table.csv")
    assert sorted((r["strategy"], r["run"]) for r in merged) == sorted(
        [(s, str(i)) for s in ("random", "predictor") for i in range(3)]
    )
    assert "Welch" in (main_out / "nb201_nas_table.md").read_text()
    assert (main_out / "RUN.md").exists() and (main_out / "nb201_nas_curves.png").exists()


def test_older_rows_without_cheap_seconds_merge_and_count_zero(monkeypatch, tmp_path: Path) -> None:
    table = load_experiment("nb201_nas_table", monkeypatch)
    old = rows_for("predictor", [0.69, 0.68, 0.69])
    new = [{**r, "strategy": "predictor_signals", "cheap_seconds": 6.0} for r in old]
    table.write_csv(old + new, tmp_path)
    rows = table.read_rows(tmp_path / "nb201_nas_table.csv")
    assert rows[0]["cheap_seconds"] == "" and rows[-1]["cheap_seconds"] == "6.0"
    args = args_for(tmp_path, ["predictor", "predictor_signals"])
    optima = {"fgsm@1": (0.692, "nb201:|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")}
    text = table.markdown(rows, args, FakeBench(), optima)
    assert "| 0 | 0.0 | 1.00 |" in text and "| 0 | 6.0 | 1.00 |" in text


def test_the_predictor_with_signals_is_charged_their_recorded_seconds(
    monkeypatch, tmp_path: Path, data_root: Path
) -> None:
    """End to end on the benchmark: a table of every class, each row recorded at 0.5 s."""
    table = load_experiment("nb201_nas_table", monkeypatch)
    signals = convs_table(tmp_path / "convs.csv", seconds=0.5)
    argv = ["nb201_nas_table.py", "--runs", "2", "--queries", "12", "--objectives", "fgsm@1"]
    argv += ["--strategies", "predictor_signals", "--out", str(tmp_path / "out")]
    argv += ["--benchmark", str(data_root / "nb201-robustness"), "--signals", str(signals)]
    monkeypatch.setattr("sys.argv", argv)
    assert table.main() == 0
    rows = table.read_rows(tmp_path / "out" / "nb201_nas_table.csv")
    assert len(rows) == 2
    for row in rows:
        assert int(row["cheap_evaluations"]) > 12  # told cells and shortlists
        assert float(row["cheap_seconds"]) == pytest.approx(0.5 * int(row["cheap_evaluations"]))
    assert (
        "zero-cost indicators at init: convs"
        in (tmp_path / "out" / "nb201_nas_table.md").read_text()
    )


def test_the_predictor_with_signals_needs_tables(monkeypatch, tmp_path: Path, capsys) -> None:
    table = load_experiment("nb201_nas_table", monkeypatch)
    argv = ["nb201_nas_table.py", "--strategies", "predictor_signals", "--out", str(tmp_path)]
    argv += ["--benchmark", str(tmp_path / "missing")]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        table.main()
    assert exit_.value.code == 2 and "needs --signals" in capsys.readouterr().err
