"""`robnas analyze RUN` (cli/analyze.py): prints the report path; bad input exits 2, writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_helpers import make_run

from robnas.cli import main


def test_cli_prints_report_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", effect="density", n=20, fsp=False)
    out = tmp_path / "elsewhere"
    assert main(["analyze", str(run), "--out", str(out), "--bootstrap", "200", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed and "20 trials" in printed
    assert (out / "report.md").stat().st_size > 0
    assert not (run / "analysis").exists()


@pytest.mark.parametrize("case", ["missing", "empty_dir", "empty_csv", "few_trials", "bootstrap"])
def test_cli_bad_input_exits_2(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["analyze", str(run)]
    if case == "empty_dir":
        run.mkdir()
    elif case == "empty_csv":
        run.mkdir()
        (run / "trials.csv").write_text("")
    elif case == "few_trials":
        make_run(run, effect="none", n=4)
    elif case == "bootstrap":
        make_run(run, effect="none", n=20)
        argv += ["--bootstrap", "50"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robnas analyze: error:") and "\n" not in err
    assert not (run / "analysis").exists()  # nothing half-written
