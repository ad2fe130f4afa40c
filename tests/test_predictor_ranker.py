"""experiments/predictor_ranker.py --signals: a second model on the same draws, features plus
per-cell signals, reported beside the features-only one."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from experiment_helpers import convs_table, load_experiment


def test_signals_add_a_paired_model_beside_the_features_only_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path
) -> None:
    ranker = load_experiment("predictor_ranker", monkeypatch)
    out = tmp_path / "out"
    argv = ["predictor_ranker.py", "--benchmark", str(data_root / "nb201-robustness")]
    argv += ["--k", "30", "--repeats", "2", "--objectives", "clean", "--out", str(out)]
    plain = [*argv[:-1], str(tmp_path / "plain")]
    monkeypatch.setattr(sys, "argv", plain)
    assert ranker.main() == 0
    monkeypatch.setattr(sys, "argv", [*argv, "--signals", str(convs_table(tmp_path / "c.csv"))])
    assert ranker.main() == 0
    with open(tmp_path / "plain" / "predictor_ranker.csv") as handle:
        before = list(csv.DictReader(handle))
    with open(out / "predictor_ranker.csv") as handle:
        after = list(csv.DictReader(handle))
    assert len(after) == len(before) == 2
    for a, b in zip(after, before, strict=True):
        # the features-only model is the same on the same draw; the second one differs
        assert a["tau"] == b["tau"] and a["tau_within_params"] == b["tau_within_params"]
        assert -1 <= float(a["signals_tau"]) <= 1 and a["signals_tau"] != a["tau"]
    assert "+ convs: tau within equal #params" in (out / "predictor_ranker.md").read_text()
