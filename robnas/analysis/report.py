"""The analysis report: one section per finding, each with numbers, a plain verdict, PNGs and CSVs.

Verdict rule everywhere: a finding is "supported" only when its 95% bootstrap interval excludes 0
and p < 0.05; otherwise the report says it is not supported by this study, with n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.analysis import plots
from robnas.analysis.core import (
    FSP_CELL,
    NON_METRICS,
    RunData,
    conv_edge_matrix,
    edge_labels,
    md_table,
)
from robnas.analysis.stats import (
    Correlation,
    bootstrap_coefs,
    bootstrap_indices,
    correlate,
    correlate_all,
    edge_effects,
    excludes_zero,
    format_p,
    interval,
    kendall_tau,
    pareto_front,
)


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    headline: str = ""

    def csv(self, name: str, frame: pd.DataFrame) -> None:
        self.files[name] = frame.to_csv(index=False, float_format="%.6g").encode()

    def png(self, name: str, payload: bytes, caption: str) -> None:
        self.files[name] = payload
        self.lines += [f"![{caption}]({name})", ""]


def _ci(low: float, high: float, digits: int = 3) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _corr_rows(label: str, corrs: dict[str, Correlation]) -> list[list[object]]:
    return [
        [label, c.method, f"{c.coef:+.3f}", _ci(c.low, c.high), format_p(c.p), c.n]
        for c in corrs.values()
    ]


def verdict(corrs: dict[str, Correlation], claim: str, expected_sign: int) -> str:
    """A plain sentence on whether the correlations support `claim` (of sign `expected_sign`)."""
    tau = corrs.get("kendall") or next(iter(corrs.values()))
    defined = [c for c in corrs.values() if c.defined]
    if not defined:
        return f"**Cannot be tested here**: a variable is constant over the n={tau.n} trials."
    sig = [c for c in defined if c.significant]
    if not sig:
        return (
            f"**Not supported by this study**: {claim} — no coefficient has a 95% CI excluding 0 "
            f"with p < 0.05 ({tau.text()})."
        )
    signs = {int(np.sign(c.coef)) for c in sig}
    if len(signs) > 1:
        return f"**Inconclusive**: the significant coefficients disagree in sign ({tau.text()})."
    if signs.pop() != expected_sign:
        return f"**Contradicted by this study**: the opposite of '{claim}' holds ({tau.text()})."
    strength = (
        "Supported"
        if len(sig) == len(defined)
        else f"Partly supported ({len(sig)} of {len(defined)} coefficients)"
    )
    return f"**{strength}**: {claim} ({tau.text()})."


def _short(verdict_text: str) -> str:
    return verdict_text.split("**")[1] if "**" in verdict_text else verdict_text


# -- sections ---------------------------------------------------------------------------------


def density_section(data: RunData, ylabel: str, n_boot: int, seed: int) -> Section:
    sec = Section("Density and robustness (RobNet finding 1)")
    y = data.robust
    rows, table = [], []
    panels = []
    corrs_by_var = {}
    for var, label in (("density", "density"), ("edge_density", "edge density")):
        corrs = correlate_all(data.column(var), y, n_boot=n_boot, seed=seed)
        corrs_by_var[var] = corrs
        rows += _corr_rows(label, corrs)
        table += [
            {
                "variable": var,
                "method": c.method,
                "coef": c.coef,
                "ci_low": c.low,
                "ci_high": c.high,
                "p": c.p,
                "n": c.n,
            }
            for c in corrs.values()
        ]
        panels.append((label, data.column(var), corrs["kendall"]))
    sec.lines += [
        "RobNet reports that densely connected cells are more robust. Density is the share of "
        "active (edge, op) pairs of the cell; edge density the share of edges with any op.",
        "",
        *md_table(["variable", "coefficient", "value", "95% CI", "p", "n"], rows),
    ]
    v1 = verdict(corrs_by_var["density"], "denser cells are more robust", +1)
    v2 = verdict(
        corrs_by_var["edge_density"], "cells with more connected edges are more robust", +1
    )
    sec.lines += [f"- Density: {v1}", f"- Edge density: {v2}", ""]
    if kendall_tau(data.column("density"), data.column("edge_density")) > 0.999:
        sec.lines += [
            "In this space density and edge density rank the cells identically (one op per edge).",
            "",
        ]
    sec.csv("density_correlations.csv", pd.DataFrame(table))
    sec.png(
        "density_scatter.png",
        plots.density_scatter(panels, y, ylabel),
        "robust accuracy vs density",
    )
    sec.headline = f"density vs robustness: {_short(v1)}"
    return sec


def budget_section(data: RunData, ylabel: str, n_boot: int, seed: int) -> Section:
    sec = Section("Parameter budget (RobNet finding 2)")
    if "num_params" not in data.trials or data.trials["num_params"].nunique() < 2:
        sec.lines.append(
            "The trials record no varying `num_params`, so the budget finding cannot be tested."
        )
        sec.headline = "budget: not testable (no parameter counts)"
        return sec
    params, y = data.column("num_params"), data.robust
    front = pareto_front(params, y)
    median = float(np.median(params))
    sec.png(
        "budget_pareto.png",
        plots.pareto_plot(params, y, front, ylabel, median),
        "robust accuracy vs parameters",
    )
    front_frame = (
        data.trials.iloc[front][["trial", "genotype", "num_params", data.robust_key]]
        if "trial" in data.trials
        else data.trials.iloc[front][["genotype", "num_params", data.robust_key]]
    )
    sec.csv("pareto_front.csv", front_frame)
    sec.lines += [
        f"The Pareto front (fewest parameters for a given robust accuracy) has {len(front)} of "
        f"the n={data.n} trials; all of them are in `pareto_front.csv`.",
        "",
        *md_table(
            ["parameters", f"{data.robust_key} (%)", "genotype"],
            [
                [f"{int(params[i]):,}", f"{y[i]:.2f}", f"`{data.trials['genotype'].iloc[i]}`"]
                for i in front[:8]
            ],
        ),
    ]
    small = params < median
    names = edge_labels(data.space)
    features = conv_edge_matrix(data.space, data.genotypes)[small]
    sec.lines += [
        f"**Which edges' convolutions matter under a small budget.** Small budget = fewer parameters "
        f"than the median ({int(median):,}): n={int(small.sum())} trials. A ridge regression "
        f"(λ=1, intercept free) of {data.robust_key} on one indicator per edge (a convolution on the "
        "edge; for cell-free genotypes the share of cells with one) gives each edge's effect in "
        f"percentage points, with 95% bootstrap intervals ({n_boot} resamples). Edges are `j→k` with "
        f"nodes 0..{data.space.inputs - 1} the cell inputs.",
        "",
    ]
    if small.sum() < 5:
        sec.lines.append("Too few small-budget trials (< 5) for the regression; run more trials.")
        sec.headline = "budget: too few small-budget trials"
        return sec
    eff = edge_effects(
        features, y[small], [n for n, _ in names], [f for _, f in names], n_boot=n_boot, rng=seed
    )
    ranking = [i for i in eff.ranking() if math.isfinite(eff.coef[i])]
    sec.lines += md_table(
        ["rank", "edge", "from", "trials with conv", "effect (pp)", "95% CI", "CI excludes 0"],
        [
            [
                r + 1,
                eff.names[i],
                "cell input" if eff.from_input[i] else "node",
                f"{100 * eff.frequency[i]:.0f}%",
                f"{eff.coef[i]:+.2f}",
                _ci(eff.low[i], eff.high[i], 2),
                "yes" if excludes_zero(eff.low[i], eff.high[i]) else "no",
            ]
            for r, i in enumerate(ranking)
        ],
    )
    if eff.dropped:
        sec.lines += [
            f"No estimate for edges {', '.join(eff.dropped)}: they never vary in these trials.",
            "",
        ]
    sec.csv(
        "edge_effects.csv",
        pd.DataFrame(
            {
                "edge": eff.names,
                "from_input": eff.from_input,
                "conv_share": eff.frequency,
                "effect_pp": eff.coef,
                "ci_low": eff.low,
                "ci_high": eff.high,
                "n": eff.n,
            }
        ),
    )
    sec.png(
        "edge_effects.png", plots.edge_effects_plot(eff, ylabel), "per-edge convolution effects"
    )
    sig = [i for i in ranking if excludes_zero(eff.low[i], eff.high[i])]
    helps = [i for i in sig if eff.coef[i] > 0]
    if helps:
        top = helps[0]
        first = (
            f"A convolution on edge {eff.names[top]} helps most: {eff.coef[top]:+.2f} pp "
            f"{_ci(eff.low[top], eff.high[top], 2)}."
        )
    else:
        first = "No edge's convolution raises robust accuracy distinguishably from 0 in this study."
    if sig:
        first += (
            " Edges whose interval excludes 0: "
            + ", ".join(
                f"{eff.names[i]} ({eff.coef[i]:+.2f} pp, {'helps' if eff.coef[i] > 0 else 'hurts'})"
                for i in sig
            )
            + ". Effects are ridge estimates, shrunk slightly toward 0."
        )
    group = excludes_zero(eff.group_low, eff.group_high)
    diff = (
        f"Edges from the cell inputs vs between intermediate nodes: mean effect difference "
        f"{eff.group_diff:+.2f} pp {_ci(eff.group_low, eff.group_high, 2)} (n={eff.n}). "
    )
    if not math.isfinite(eff.group_diff):
        diff += "Not testable: one of the two groups has no varying edge."
    elif group:
        side = "cell-input edges" if eff.group_diff > 0 else "node-to-node edges"
        diff += f"Convolutions on {side} matter more under a small budget: **supported**."
    else:
        diff += "**Not supported by this study** (the interval includes 0)."
    sec.lines += [f"- {first}", f"- {diff}", ""]
    best = f"conv on {eff.names[helps[0]]} helps most" if helps else "no edge's conv clearly helps"
    side = "input" if eff.group_diff > 0 else "node"
    sec.headline = f"budget: {best}; input vs node edges: " + (
        f"{side} edges matter more" if group else "not supported"
    )
    return sec


def fsp_section(data: RunData, ylabel: str, n_boot: int, seed: int) -> Section:
    sec = Section("FSP distance per cell (RobNet finding 3)")
    cols = sorted(
        ((int(m.group(1)), c) for c in data.trials.columns if (m := FSP_CELL.match(str(c)))),
    )
    cols = [(k, c) for k, c in cols if np.isfinite(data.column(c)).sum() >= 3]
    if not cols:
        sec.lines.append(
            "This study recorded no per-cell FSP distances (`fsp_dist_cell{k}` columns), so RobNet's "
            "finding 3 cannot be tested here; run the search with the `fsp` indicator to add them."
        )
        sec.headline = "FSP: skipped (no FSP recorded)"
        return sec
    y = data.robust
    taus = [(k, correlate(data.column(c), y, "kendall", n_boot=n_boot, rng=seed)) for k, c in cols]
    sec.lines += [
        "RobNet finds that robust networks have a smaller FSP distance (clean vs adversarial feature "
        "flow) in the deeper cells, i.e. a negative correlation there. Kendall τ per cell:",
        "",
        *md_table(
            ["cell", "Kendall τ", "95% CI", "p", "n", "CI excludes 0"],
            [
                [
                    k,
                    f"{t.coef:+.3f}",
                    _ci(t.low, t.high),
                    format_p(t.p),
                    t.n,
                    "yes" if t.significant else "no",
                ]
                for k, t in taus
            ],
        ),
    ]
    sec.csv(
        "fsp_kendall.csv",
        pd.DataFrame(
            [
                {"cell": k, "tau": t.coef, "ci_low": t.low, "ci_high": t.high, "p": t.p, "n": t.n}
                for k, t in taus
            ]
        ),
    )
    sec.png("fsp_tau_by_cell.png", plots.tau_by_cell(taus), "Kendall tau by cell")
    sec.png(
        "fsp_scatter.png",
        plots.fsp_scatter(
            [(k, data.column(c), t) for (k, c), (_, t) in zip(cols, taus, strict=True)], y, ylabel
        ),
        "robust accuracy vs FSP per cell",
    )
    sig = [k for k, t in taus if t.significant]
    neg = [k for k, t in taus if t.significant and t.coef < 0]
    lines = [
        f"Cells with a significant correlation: {', '.join(map(str, sig)) or 'none'} "
        f"(negative, as RobNet predicts: {', '.join(map(str, neg)) or 'none'})."
    ]
    if len(cols) >= 2:
        # deeper half vs shallower half, |tau| compared on the same resamples of the trials
        half = len(cols) // 2
        shallow, deep = cols[:half], cols[half:]
        keep = np.all([np.isfinite(data.column(c)) for _, c in cols], axis=0)
        idx = bootstrap_indices(int(keep.sum()), n_boot, np.random.default_rng(seed))

        def mean_abs(group: list[tuple[int, str]]) -> tuple[float, np.ndarray]:
            point = np.mean([abs(kendall_tau(data.column(c)[keep], y[keep])) for _, c in group])
            boots = np.mean(
                [
                    np.abs(bootstrap_coefs("kendall", data.column(c)[keep], y[keep], idx))
                    for _, c in group
                ],
                axis=0,
            )
            return float(point), boots

        d_point, d_boot = mean_abs(deep)
        s_point, s_boot = mean_abs(shallow)
        low, high = interval(d_boot - s_boot)
        supported = excludes_zero(low, high) and d_point > s_point
        lines.append(
            f"Mean |τ| of the deeper cells ({deep[0][0]}–{deep[-1][0]}) is {d_point:.3f}, of the shallower "
            f"cells ({shallow[0][0]}–{shallow[-1][0]}) {s_point:.3f}; difference {d_point - s_point:+.3f} "
            f"{_ci(low, high)} (n={int(keep.sum())}). Deeper cells carry more of the signal: "
            + ("**supported**." if supported else "**not supported by this study**.")
        )
        sec.headline = (
            f"FSP: deeper cells carry the signal: {'supported' if supported else 'not supported'}"
        )
    else:
        sec.headline = f"FSP: {len(sig)} significant cell(s)"
    sec.lines += [f"- {line}" for line in lines] + [""]
    return sec


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
                    _ci(taus[i].low, taus[i].high),
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
    from robnas.analysis.nb201 import same_params_study, same_params_tables

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
    if data.tabular and data.space.family == "nb201":
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
