"""The analysis report on synthetic runs with planted (or no) effects (analysis/report.py, robnet.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import N_BOOT, PNG_MAGIC, make_macro_run, make_run

from robnas.analysis.report import AnalysisResult, analyze


@pytest.fixture(scope="module")
def density_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AnalysisResult]:
    run = make_run(tmp_path_factory.mktemp("density") / "run", effect="density")
    return run, analyze(run, n_boot=N_BOOT, seed=0)


def test_planted_density_effect_is_recovered(density_run: tuple[Path, AnalysisResult]) -> None:
    run, result = density_run
    table = pd.read_csv(run / "analysis" / "density_correlations.csv")
    kendall = table[(table.variable == "density") & (table.method == "kendall")].iloc[0]
    assert kendall.coef > 0.5 and kendall.ci_low > 0 and kendall.p < 0.05 and kendall.n == 60
    report = (run / "analysis" / "report.md").read_text()
    assert "- Density: **Supported**: denser cells are more robust" in report
    assert "n = 60" in report and "pgd20_acc" in report


def test_no_density_effect_is_not_supported(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="none", seed=1)
    analyze(run, n_boot=N_BOOT, seed=0)
    table = pd.read_csv(run / "analysis" / "density_correlations.csv")
    density = table[table.variable == "density"]
    assert (density.ci_low <= 0).all() and (density.ci_high >= 0).all()
    report = (run / "analysis" / "report.md").read_text()
    assert "- Density: **Not supported by this study**" in report


def test_report_files_exist_and_are_nonempty(density_run: tuple[Path, AnalysisResult]) -> None:
    run, result = density_run
    out = run / "analysis"
    pngs = [
        "density_scatter.png",
        "budget_pareto.png",
        "edge_effects.png",
        "fsp_tau_by_cell.png",
        "fsp_scatter.png",
        "indicators.png",
    ]
    csvs = [
        "density_correlations.csv",
        "pareto_front.csv",
        "edge_effects.csv",
        "fsp_kendall.csv",
        "indicator_kendall.csv",
    ]
    for name in pngs:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    for name in csvs:
        assert len(pd.read_csv(out / name)) > 0, name
    report = (out / "report.md").read_text()
    for name in pngs:
        assert f"({name})" in report
    assert not list(out.glob("*.tmp"))
    assert set(result.files) == {out / n for n in [*pngs, *csvs, "report.md"]}


def test_fsp_deeper_cells_and_indicator_table(density_run: tuple[Path, AnalysisResult]) -> None:
    run, _ = density_run
    fsp = pd.read_csv(run / "analysis" / "fsp_kendall.csv").set_index("cell")
    assert (fsp.loc[[3, 4], "ci_high"] < 0).all()  # planted: deeper cells negatively correlated
    assert (
        "Deeper cells carry more of the signal: **supported**"
        in (run / "analysis" / "report.md").read_text()
    )
    ind = pd.read_csv(run / "analysis" / "indicator_kendall.csv")
    assert {"density", "edge_density", "num_params", "clean_acc", "jac_norm"} <= set(ind.indicator)
    assert ind.iloc[0].indicator in {"density", "edge_density"}  # strongest first


def test_planted_edge_effect_in_report(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", effect="edge", n=120, fsp=False)
    analyze(run, n_boot=N_BOOT, seed=0)
    eff = pd.read_csv(run / "analysis" / "edge_effects.csv")
    best = eff.sort_values("effect_pp", ascending=False).iloc[0]
    assert best.edge == "1→3" and best.from_input and best.ci_low > 0
    report = (run / "analysis" / "report.md").read_text()
    assert "A convolution on edge 1→3 helps most" in report
    assert "finding 3 cannot be tested here" in report  # no FSP columns: a clear sentence


def test_macro_space_run_skips_the_cell_findings(tmp_path: Path) -> None:
    run = make_macro_run(tmp_path / "run")
    result = analyze(run, n_boot=N_BOOT, seed=0)
    report = result.report.read_text()
    assert "describes whole networks, not cells" in report
    assert "density: not applicable (no cells)" in result.headlines
    assert (result.out_dir / "budget_pareto.png").read_bytes().startswith(PNG_MAGIC)
    assert not (result.out_dir / "edge_effects.csv").exists()
    assert "num_params" in set(pd.read_csv(result.out_dir / "indicator_kendall.csv").indicator)
