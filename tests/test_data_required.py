"""ROBNAS_REQUIRE_DATA=1 turns a data test's skip into a failure: pytest runs in a subprocess on
a small test file (with this folder's conftest.py as a plugin) against data folders that lack
what the tests read, once with and once without the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from data_helpers import DATASETS, missing_data

HERE = Path(__file__).resolve().parent

PROBE = """
from data_helpers import needs


def test_folder(data_root):
    assert data_root.is_dir()


@needs("cifar10")
def test_cifar10(data_root):
    assert (data_root / "cifar10").is_dir()


@needs("nb201-robustness")
def test_nb201():
    pass


def test_without_data():
    pass
"""


def _outcomes(tmp_path: Path, data: Path, require: bool) -> dict[str, str]:
    """Each probe test's outcome from a JUnit report: "passed", "skipped" or "failed" (a failure
    in the test or an error in its setup: either fails the run, as the exit code must say)."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "ROBNAS_DATA": str(data), "PYTHONPATH": str(HERE)}
    env.pop("ROBNAS_REQUIRE_DATA", None)
    if require:
        env["ROBNAS_REQUIRE_DATA"] = "1"
    report = tmp_path / "report.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-n",
        "0",
        "-p",
        "conftest",
        "-p",
        "no:cacheprovider",
    ]
    cmd += ["-c", os.devnull, "--rootdir", str(tmp_path), f"--junitxml={report}", "test_probe.py"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert report.is_file(), done.stdout + done.stderr
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("skipped", "failed", "error")]
        outcome = kinds[0] if kinds else "passed"
        outcomes[case.get("name", "")] = "failed" if outcome in ("failed", "error") else outcome
    assert (done.returncode != 0) == ("failed" in outcomes.values()), done.stdout
    return outcomes


@pytest.mark.parametrize("require", [False, True])
def test_a_missing_data_folder_skips_or_fails(tmp_path: Path, require: bool) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    outcome = _outcomes(run, empty, require)
    missing = "failed" if require else "skipped"
    assert outcome == {
        "test_folder": missing,
        "test_cifar10": missing,
        "test_nb201": missing,
        "test_without_data": "passed",
    }


def test_a_missing_dataset_fails_only_the_tests_that_read_it(tmp_path: Path) -> None:
    partial = tmp_path / "data"
    (partial / "cifar10").mkdir(parents=True)
    run = tmp_path / "run"
    run.mkdir()
    outcome = _outcomes(run, partial, require=True)
    assert outcome == {
        "test_folder": "failed",  # takes data_root without `needs`: reads every dataset
        "test_cifar10": "passed",
        "test_nb201": "failed",
        "test_without_data": "passed",
    }


def test_missing_data_names_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(tmp_path / "nowhere"))
    assert "not found" in str(missing_data())
    monkeypatch.setenv("ROBNAS_DATA", str(tmp_path))
    (tmp_path / "cifar10").mkdir()
    assert missing_data("cifar10") is None
    assert missing_data(*DATASETS) == (
        f"the data folder {tmp_path.resolve()} lacks nb201-robustness and robnet-architectures.json"
    )
    with pytest.raises(ValueError, match="unknown dataset"):
        missing_data("cifar100")
