"""RobNet's three findings tested on a study's trials: density, parameter budget, FSP per cell.

Each section is built in memory (markdown lines, CSV tables, PNG plots, a one-line headline);
the verdict rule is in `markdown.py`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from robnas.analysis import plots
from robnas.analysis.edges import conv_edge_matrix, edge_labels
from robnas.analysis.load import FSP_CELL, RunData
from robnas.analysis.markdown import Section, ci, corr_rows, md_table, short_verdict, verdict
from robnas.analysis.stats import (
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

__all__ = ["budget_section", "density_section", "fsp_section"]


def density_section(data: RunData, ylabel: str, n_boot: int, seed: int) -> Section:
    sec = Section("Density and robustness (RobNet finding 1)")
    if not data.cells:
        sec.lines.append(
            f"The `{data.space.name}` space describes whole networks, not cells: density (the share "
            "of a cell's active edge ops) is not defined, so RobNet's finding 1 does not apply."
        )
        sec.headline = "density: not applicable (no cells)"
        return sec
    y = data.robust
    rows, table = [], []
    panels = []
    corrs_by_var = {}
    for var, label in (("density", "density"), ("edge_density", "edge density")):
        corrs = correlate_all(data.column(var), y, n_boot=n_boot, seed=seed)
        corrs_by_var[var] = corrs
        rows += corr_rows(label, corrs)
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
    sec.headline = f"density vs robustness: {short_verdict(v1)}"
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
    if not data.cells:
        sec.headline = f"budget: Pareto front of {len(front)} (no cell edges to compare)"
        return sec
    small = params < median
    names = edge_labels(data.cell_space)
    features = conv_edge_matrix(data.cell_space, data.genotypes)[small]
    sec.lines += [
        f"**Which edges' convolutions matter under a small budget.** Small budget = fewer parameters "
        f"than the median ({int(median):,}): n={int(small.sum())} trials. A ridge regression "
        f"(λ=1, intercept free) of {data.robust_key} on one indicator per edge (a convolution on the "
        "edge; for cell-free genotypes the share of cells with one) gives each edge's effect in "
        f"percentage points, with 95% bootstrap intervals ({n_boot} resamples). Edges are `j→k` with "
        f"nodes 0..{data.cell_space.inputs - 1} the cell inputs.",
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
                ci(eff.low[i], eff.high[i], 2),
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
            f"{ci(eff.low[top], eff.high[top], 2)}."
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
        f"{eff.group_diff:+.2f} pp {ci(eff.group_low, eff.group_high, 2)} (n={eff.n}). "
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
                    ci(t.low, t.high),
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
            f"{ci(low, high)} (n={int(keep.sum())}). Deeper cells carry more of the signal: "
            + ("**supported**." if supported else "**not supported by this study**.")
        )
        sec.headline = (
            f"FSP: deeper cells carry the signal: {'supported' if supported else 'not supported'}"
        )
    else:
        sec.headline = f"FSP: {len(sig)} significant cell(s)"
    sec.lines += [f"- {line}" for line in lines] + [""]
    return sec
