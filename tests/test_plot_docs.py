"""experiments/plot_docs.py draws the docs' figures from result tables, and
experiments/main_job_curve.py records a supernet pass without changing what it trains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from experiment_helpers import load_experiment
from test_train import synthetic, tiny_cfg

from robnas.models.supernet import Supernet, UniformOpSampler
from robnas.training.loop import Progress, train, validate

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
PNG = b"\x89PNG\r\n\x1a\n"


def test_markdown_table_reads_the_table_a_report_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    plot = load_experiment("plot_docs", monkeypatch)
    text = "intro\n\n| a | b |\n|---|---|\n| x | 1 |\n| y | 2 |\n\nafter\n| a | c |\n"
    table = plot.markdown_table(text, "a")
    assert list(table.columns) == ["a", "b"] and table["b"].tolist() == ["1", "2"]
    with pytest.raises(ValueError, match="no table"):
        plot.markdown_table(text, "z")


@pytest.mark.parametrize(
    ("figure", "study", "files", "png"),
    [
        (
            "macro_depth_width",
            "macro_depth_width",
            ["macro_depth_width.csv"],
            "macro_depth_width.png",
        ),
        (
            "export_pt2_survey",
            "export_pt2_survey",
            ["export_pt2_survey.csv"],
            "export_pt2_survey.png",
        ),
        ("indicators_nb201", "indicators_nb201", ["indicators_nb201.md"], "indicators_eps.png"),
        (
            "ranking_third_draw",
            "ranking_third_draw",
            ["ranking_third_draw.csv"],
            "ranking_scatter.png",
        ),
    ],
)
def test_figures_are_drawn_from_the_committed_tables(
    figure: str,
    study: str,
    files: list[str],
    png: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plot = load_experiment("plot_docs", monkeypatch)
    (tmp_path / study).mkdir()
    for name in files:
        shutil.copy(RESULTS / study / name, tmp_path / study / name)
    assert plot.main(["--results", str(tmp_path), "--only", figure]) == 0
    assert (tmp_path / study / png).read_bytes().startswith(PNG)


def test_the_third_draw_figure_reports_the_committed_taus(monkeypatch: pytest.MonkeyPatch) -> None:
    """The figure's taus are the report's: score 0.624 / 0.495 against clean (ranking.md)."""
    import numpy as np
    import pandas as pd

    plot = load_experiment("plot_docs", monkeypatch)
    table = pd.read_csv(RESULTS / "ranking_third_draw" / "ranking_third_draw.csv")
    params = table["params"].to_numpy()
    overall, within = plot.taus(table["robust_score"].to_numpy(), table["pgd@1"].to_numpy(), params)
    assert (round(overall, 3), round(within, 3)) == (0.283, 0.253)
    assert np.isnan(plot.taus(params, table["clean"].to_numpy(), params)[1])


def test_the_curve_figure_reads_curve_csv_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plot = load_experiment("plot_docs", monkeypatch)
    folder = tmp_path / "main_job_curve"
    folder.mkdir()
    (folder / "curve.csv").write_text(
        "kind,step,fraction,train_loss,clean_acc,robust_acc\n"
        "step,1,0.01,2.3,,\nval,1,0.01,,0.1,0.0\nstep,11,0.11,2.1,,\n"
        "step,91,0.91,1.9,,\nval,100,1.0,,0.3,0.2\n"
    )
    meta = {"train": {"clean_epochs": 0.3, "eps_ramp_epochs": 0.3, "epochs": 1, "batch_size": 32}}
    meta |= {"val_images": 500, "steps": 100, "train_images": 3200}
    (folder / "curve.json").write_text(json.dumps(meta))
    assert plot.main(["--results", str(tmp_path), "--only", "main_job_curve"]) == 0
    assert (folder / "curve.png").read_bytes().startswith(PNG)


def test_validation_steps_are_reported_steps_spread_over_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    curve = load_experiment("main_job_curve", monkeypatch)
    at = curve.validation_steps(1546, 10, 10)
    assert len(at) == 10 and at[0] == 1 and all(s % 10 == 1 for s in at)
    assert all(b - a > 100 for a, b in zip(at, at[1:]))
    assert curve.validation_steps(5, 3, 10) == [1]
    assert curve.validation_steps(100, 0, 10) == []


def test_the_recorder_keeps_rows_it_has_and_adds_the_pass_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    curve = load_experiment("main_job_curve", monkeypatch)
    path = tmp_path / "curve.csv"
    calls = []
    rows = [
        {"kind": "val", "step": "1", "fraction": "0.1", "clean_acc": "0.5", "robust_acc": "0.1"}
    ]
    callback = curve.recorder(
        rows, 10, [1, 5], lambda: calls.append(1) or {"clean_acc": 0.2, "robust_acc": 0.1},
        lambda: curve.write_rows(path, rows),
    )  # fmt: skip
    callback(Progress("step", 1, 1, 1, 10, 2.0))  # resumed: step 1's validation is kept
    callback(Progress("step", 1, 1, 5, 10, 1.5))
    callback(Progress("epoch_end", 1, 1, 10, 10, row={"clean_acc": 0.4, "robust_acc": 0.3}))
    assert len(calls) == 1
    written = curve.read_rows(path)
    assert [(r["kind"], r["step"]) for r in written] == [
        ("step", "1"), ("val", "1"), ("step", "5"), ("val", "5"), ("val", "10"),
    ]  # fmt: skip
    assert written[1]["clean_acc"] == "0.5" and written[-1]["robust_acc"] == "0.3"


def test_validating_inside_the_pass_leaves_the_training_unchanged(tmp_path: Path) -> None:
    """The curve's premise: the weights trained with validations inside the pass are the weights
    trained without them, bit for bit."""
    data, val = synthetic(64, 0), synthetic(32, 1)
    cfg = tiny_cfg(epochs=1, batch_size=16, method="fgsm-rs")

    def run(validate_inside: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = Supernet("nb201", {"C": 4, "N": 1})
        seen = []

        def callback(p: Progress) -> None:
            if validate_inside and p.kind == "step":
                seen.append(validate(model, data, val, cfg))

        train(
            model, data, val, cfg, sampler=UniformOpSampler(model.space, seed=3), progress=callback
        )
        assert len(seen) == (2 if validate_inside else 0)  # steps 1 and 4 report
        return {k: v.clone() for k, v in model.state_dict().items()}

    plain, validated = run(False), run(True)
    assert plain.keys() == validated.keys()
    assert all(torch.equal(plain[k], validated[k]) for k in plain)
