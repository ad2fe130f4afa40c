"""robnas analyze on synthetic study runs with planted (or no) effects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robnas.analysis.core import analyze, choose_robust_key, conv_edge_matrix, edge_labels, load_run
from robnas.analysis.stats import _kendall_rows, correlate, edge_effects, pareto_front
from robnas.cli import main
from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.space.search_space import get_space

N_BOOT = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    *,
    effect: str,
    n: int = 60,
    seed: int = 0,
    fsp: bool = True,
    status: list[str] | None = None,
) -> Path:
    """A supernet-style run: darts genotypes of spread density, pgd20_acc as a fraction."""
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n):
        p = rng.uniform(0.1, 0.9)  # per-trial density, so density varies widely
        edges = [
            frozenset(op for op in space.ops if rng.random() < p) for _ in range(space.num_edges)
        ]
        g = Genotype("darts", (space.cell_from_edges(edges),))
        robust = 30 + rng.normal(0, 2)
        if effect == "density":
            robust += 20 * space.density(g)
        elif effect == "edge":  # a conv on edge 3 (1→3, a cell-input edge) adds 6 points
            robust += 6 * ("sep_conv_3x3" in edges[3])
        row = {
            "trial": t,
            "genotype": g.to_str(),
            "status": "ok" if status is None else status[t],
            "num_params": space.num_params(g, macro),
            "flops": 1000,
            "seconds": 1.0,
            "clean_acc": (70 + rng.normal(0, 3)) / 100,
            "pgd20_acc": robust / 100,
            "jac_norm": rng.gamma(2.0),
            "density": space.density(g),
            "edge_density": space.edge_density(g),
        }
        if fsp:  # the deeper cells (3, 4) carry the signal: lower distance, more robust
            for k in range(5):
                row[f"fsp_dist_cell{k}"] = rng.gamma(2.0) + (k >= 3) * (50 - robust) * 0.3
        rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    (root / "summary.json").write_text(json.dumps({"objective": "pgd20_acc"}))
    (root / "config.json").write_text(json.dumps({"space": "darts"}))
    return root


@pytest.fixture(scope="module")
def density_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    run = make_run(tmp_path_factory.mktemp("density") / "run", effect="density")
    return run, analyze(run, n_boot=N_BOOT, seed=0)


def test_kendall_bootstrap_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, (40, 30)).astype(float)
    b = np.round(a + rng.normal(0, 2, a.shape))
    expected = [stats.kendalltau(x, y)[0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(_kendall_rows(a, b), expected, atol=1e-12)


def test_correlate_point_estimates_and_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    for method, fn in (
        ("pearson", stats.pearsonr),
        ("spearman", stats.spearmanr),
        ("kendall", stats.kendalltau),
    ):
        c = correlate(x, y, method, n_boot=N_BOOT, rng=3)
        assert c.coef == pytest.approx(fn(x, y)[0])
        assert c.low < c.coef < c.high and c.n == 50 and c.significant
    assert correlate(x, y, n_boot=N_BOOT, rng=3) == correlate(x, y, n_boot=N_BOOT, rng=3)
    flat = correlate(np.ones(10), y[:10], n_boot=N_BOOT)
    assert not flat.defined and not flat.significant


def test_pareto_front() -> None:
    cost = np.array([1, 2, 2, 3, 4, 5])
    value = np.array([10, 9, 12, 12, 15, 14])
    assert pareto_front(cost, value).tolist() == [0, 2, 4]


def test_edge_regression_ranks_planted_edge_first() -> None:
    space = get_space("darts")
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(80)]
    x = conv_edge_matrix(space, genotypes)
    y = 40 + 5 * x[:, 6] + rng.normal(0, 1, len(x))
    names = edge_labels(space)
    eff = edge_effects(x, y, [n for n, _ in names], [f for _, f in names], n_boot=N_BOOT, rng=0)
    assert eff.ranking()[0] == 6
    assert eff.low[6] > 3 and eff.high[6] < 6
    others = np.delete(np.arange(space.num_edges), 6)
    assert np.all(np.abs(eff.coef[others]) < 1.5)


def test_planted_density_effect_is_recovered(density_run: tuple[Path, object]) -> None:
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


def test_report_files_exist_and_are_nonempty(density_run: tuple[Path, object]) -> None:
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
    assert set(result.files) == {out / n for n in [*pngs, *csvs, "report.md"]}  # type: ignore[attr-defined]


def test_fsp_deeper_cells_and_indicator_table(density_run: tuple[Path, object]) -> None:
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


def test_cli_prints_report_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", effect="density", n=20, fsp=False)
    out = tmp_path / "elsewhere"
    assert main(["analyze", str(run), "--out", str(out), "--bootstrap", "200", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed and "20 trials" in printed
    assert (out / "report.md").stat().st_size > 0
    assert not (run / "analysis").exists()


@pytest.mark.parametrize("case", ["missing", "empty_dir", "empty_csv", "few_trials"])
def test_cli_bad_input_exits_2(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    if case == "empty_dir":
        run.mkdir()
    elif case == "empty_csv":
        run.mkdir()
        (run / "trials.csv").write_text("")
    elif case == "few_trials":
        make_run(run, effect="none", n=4)
    assert main(["analyze", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robnas analyze: error:") and "\n" not in err
    assert not (run / "analysis").exists()  # nothing half-written
