"""The analysis report of a study run: RobNet's findings, the indicators, the NB201 same-params study.

`analyze(run_dir)` loads the run (`load.py`), builds every section in memory (`robnet.py` and the
sections below), then writes each CSV and PNG atomically and `report.md` last, so bad input leaves
nothing half-written. Accuracies are reported in percent (fractions in the run are scaled by 100).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.analysis import plots
from robnas.analysis.load import FSP_CELL, NON_METRICS, RunData, find_benchmark_dir, load_run
from robnas.analysis.markdown import Section, ci, md_table
from robnas.analysis.nb201 import same_params_study, same_params_tables
from robnas.analysis.robnet import budget_section, density_section, fsp_section
from robnas.analysis.stats import correlate, format_p
from robnas.errors import ConfigError
from robnas.io import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = ["AnalysisResult", "analyze", "build_report"]


def indicator_section(data: RunData, n_boot: int, seed: int) -> Section:
    sec = Section("Indicators vs robust accuracy")
    names, taus, constant = [], [], []
    for col in data.metrics:
        if col == data.robust_key or col in NON_METRICS or FSP_CELL.match(col):
            continue
        x = data.column(col)
        if np.isfinite(x).sum() < 3 or np.ptp(x[np.isfinite(x)]) == 0:
            constant.append(col)
            continue
        names.append(col)
        taus.append(correlate(x, data.robust, "kendall", n_boot=n_boot, rng=seed))
    if not names:
        sec.lines.append("No indicator varies across the trials.")
        sec.headline = "indicators: none vary"
        return sec
    order = np.argsort([-abs(t.coef) for t in taus])
    sec.lines += [
        f"Kendall τ of every recorded metric with {data.robust_key}, strongest first (as in the "
        "NB201 robustness dataset paper's indicator figure). Per-cell FSP columns are in the FSP section.",
        "",
        *md_table(
            ["indicator", "Kendall τ", "95% CI", "p", "n", "CI excludes 0, p < 0.05"],
            [
                [
                    names[i],
                    f"{taus[i].coef:+.3f}",
                    ci(taus[i].low, taus[i].high),
                    format_p(taus[i].p),
                    taus[i].n,
                    "yes" if taus[i].significant else "no",
                ]
                for i in order
            ],
        ),
    ]
    if constant:
        sec.lines += [f"Constant or missing in this study (no τ): {', '.join(constant)}.", ""]
    sec.csv(
        "indicator_kendall.csv",
        pd.DataFrame(
            [
                {
                    "indicator": names[i],
                    "tau": taus[i].coef,
                    "ci_low": taus[i].low,
                    "ci_high": taus[i].high,
                    "p": taus[i].p,
                    "n": taus[i].n,
                }
                for i in order
            ]
        ),
    )
    sec.png(
        "indicators.png",
        plots.indicator_bars(names, taus, data.robust_key),
        "indicator Kendall tau",
    )
    best = order[0]
    sec.headline = f"strongest indicator: {names[best]} (τ={taus[best].coef:+.2f}{'' if taus[best].significant else ', not significant'})"
    return sec


def same_params_section(benchmark_dir: Path | None) -> Section:

    sec = Section("Same parameter count on the NB201 robustness dataset")
    if benchmark_dir is None:
        sec.lines.append(
            "The NB201 robustness dataset was not found (set ROBNAS_DATA or pass --benchmark DIR), "
            "so this section is skipped."
        )
        sec.headline = "same-params: skipped (dataset not found)"
        return sec
    study = same_params_study(benchmark_dir)
    low, high = study.spread
    sec.lines += same_params_tables(study)
    sec.csv("same_params.csv", study.table)
    sec.csv("same_params_edges.csv", study.edge_usage)
    sec.csv("same_params_pairs.csv", study.pairs)
    sec.png(
        "same_params.png",
        plots.same_params_plot(
            study.table["mean_adv_acc"].to_numpy(),
            list(study.edge_usage["edge"]),
            study.edge_usage["share_top"].to_numpy(),
            study.edge_usage["share_all"].to_numpy(),
            study.top,
        ),
        "same-parameter architectures",
    )
    sec.headline = f"same params (n={study.n}): mean adversarial accuracy {low:.1f}%–{high:.1f}%"
    return sec


def build_report(
    data: RunData, *, n_boot: int, seed: int, benchmark_dir: Path | None
) -> tuple[str, dict[str, bytes], list[str]]:
    """The report markdown, its files by name, and one headline per section."""
    ylabel = f"{data.robust_key} (%)"
    sections = [
        density_section(data, ylabel, n_boot, seed),
        budget_section(data, ylabel, n_boot, seed),
        fsp_section(data, ylabel, n_boot, seed),
        indicator_section(data, n_boot, seed),
    ]
    if data.tabular and data.cells and data.cell_space.family == "nb201":
        sections.append(same_params_section(benchmark_dir))
    head = [
        f"# Analysis of `{data.run_dir.name}`",
        "",
        f"- Trials analysed: **n = {data.n}** (status ok, {data.robust_key} known"
        + (f"; {data.dropped} other rows left out" if data.dropped else "")
        + ").",
        f"- Space: `{data.space.name}`; evaluation: {'tabular lookup' if data.tabular else 'measured'}.",
        f"- Robust accuracy: `{data.robust_key}` ({data.robust_reason}), in percent"
        + (" (`attack@eps` keys give eps in 1/255)." if "@" in data.robust_key else "."),
        f"- Intervals: 95% percentile bootstrap over trials, {n_boot} resamples, seed {seed}; p-values "
        "from scipy. A finding is *supported* only when its interval excludes 0 and p < 0.05.",
        "",
        "## Summary",
        "",
        *[f"- {s.headline}" for s in sections],
        "",
    ]
    body: list[str] = []
    files: dict[str, bytes] = {}
    for i, sec in enumerate(sections, 1):
        body += [f"## {i}. {sec.title}", "", *sec.lines, ""]
        files.update(sec.files)
    return "\n".join(head + body).rstrip() + "\n", files, [s.headline for s in sections]


@dataclass(frozen=True)
class AnalysisResult:
    out_dir: Path
    report: Path
    files: tuple[Path, ...]
    n: int
    robust_key: str
    headlines: tuple[str, ...]


def analyze(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    benchmark_dir: str | os.PathLike[str] | None = None,
) -> AnalysisResult:
    """Test the findings on a run; write report.md, PNGs and CSVs to `out_dir` (RUN/analysis)."""
    if n_boot < 100:
        raise ConfigError(f"--bootstrap {n_boot} is too few for 95% intervals; use at least 100")
    data = load_run(run_dir)
    bench = Path(benchmark_dir) if benchmark_dir is not None else find_benchmark_dir(data.settings)
    report, files, headlines = build_report(data, n_boot=n_boot, seed=seed, benchmark_dir=bench)
    out = Path(out_dir) if out_dir is not None else data.run_dir / "analysis"
    written = []
    for name, payload in files.items():
        atomic_write_bytes(out / name, payload)
        written.append(out / name)
    atomic_write_bytes(out / "report.md", report.encode("utf-8"))
    log.info("analysis of %s written to %s", data.run_dir, out)
    return AnalysisResult(
        out_dir=out,
        report=out / "report.md",
        files=(*written, out / "report.md"),
        n=data.n,
        robust_key=data.robust_key,
        headlines=tuple(headlines),
    )
