"""experiments/export_pt2_survey.py at a toy size: one cell of each space exported and verified,
the table written, and a rerun that exports nothing again."""

from __future__ import annotations

import pandas as pd
from experiment_helpers import load_experiment


def test_toy_survey_exports_verifies_and_resumes(tmp_path, monkeypatch):
    script = load_experiment("export_pt2_survey", monkeypatch)
    out = tmp_path / "survey" / "export_pt2_survey"
    argv = ["--cells", "1", "--wrn", "0", "--no-named", "--out", str(out)]
    assert script.main(argv) == 0
    table = pd.read_csv(out.with_suffix(".csv"))
    assert table["kind"].tolist() == ["darts", "nb201"]
    assert (table["status"] == "ok").all() and (table["max_abs_diff"] <= 1e-4).all()
    assert "2 of 2 exported" in out.with_suffix(".md").read_text()

    calls = []
    monkeypatch.setattr(script, "render", lambda *a, **k: calls.append(1))
    assert script.main(argv) == 0
    assert not calls  # both rows were done
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), table)
