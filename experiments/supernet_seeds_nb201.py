"""Does the supernet's ranking survive a new training seed? robnas rank's `score` on NB201 over
several supernets trained by one recipe.

The two replications before it redrew the cells, not the supernet: both used training seed 0.
A supernet trained the same way by `robnas supernet train` (its validation draws from the same
random stream, so it is effectively another seed) ranked `clean` at tau 0.195 against seed 0's
0.448. This script reads the per-cell tables of supernets trained by one recipe on the same cells
(`experiments/oneshot_rank_nb201.py --seed S --cells ...` or `robnas rank`) and reports, per
supernet: its clean accuracy against each truth, overall and within equal parameter counts;
`score` = params+(supernet,naswot) against #params and against params+naswot (which needs no
supernet), with 95% paired bootstrap intervals; then how far the supernets agree with each other,
and what the mean of their ranks gives (an ensemble costs one training per member).

The rule, declared before seeds 1 and 2 finished training: `robnas rank`'s default
`score` stays params+(supernet,naswot) if, averaged over the recipe's supernets, its Kendall tau
against `clean` exceeds params+naswot's; otherwise the default becomes params+naswot, and the
supernet's columns stay in the report beside it. The supernets it averages over: every one of the
recipe trained on the first draw's 500 cells by the deadline set with the rule (planned: seeds 0-3 of
oneshot_rank_nb201.py, seeds 0 and 1 of `robnas supernet train`; any that does not finish is
named as missing, not dropped silently).

    python experiments/supernet_seeds_nb201.py \\
        --supernet seed0=experiments/results/oneshot_rank_nb201/oneshot_rank_nb201_long.csv \\
        --supernet cli=experiments/results/rank_cli_nb201/rank_cli_nb201.csv ... \\
        --naswot experiments/results/indicators_nb201/indicators_nb201_oneshot500_naswot_n5.csv \\
        --out experiments/results/supernet_seeds_nb201/supernet_seeds_nb201
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.io import atomic_write_text
from robnas.ranking.metrics import kendall, kendall_within, tau_gain
from robnas.ranking.report import TRUTHS, params_then_mean_rank, ranks_over_all, with_rank_columns


def read_supernet(path: Path) -> pd.DataFrame:
    table = with_rank_columns(pd.read_csv(path))
    return table[["arch", "params", "supernet_clean", *TRUTHS]]


def load(supernets: dict[str, Path], naswot: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per cell: params, naswot, the truths, and each supernet's clean accuracy as
    `sn:<label>`. Every table must hold the same cells (a partial run is refused)."""
    tables = {label: read_supernet(path) for label, path in supernets.items()}
    first = next(iter(tables.values()))
    cells = set(first["arch"])
    for label, table in tables.items():
        if set(table["arch"]) != cells:
            raise SystemExit(
                f"error: {supernets[label]} holds {len(table)} cells, not the {len(cells)} of "
                f"{next(iter(supernets.values()))}; score the same cells (--cells) and finish it"
            )
    merged = first.drop(columns="supernet_clean")
    for label, table in tables.items():
        renamed = table[["arch", "supernet_clean"]].rename(
            columns={"supernet_clean": f"sn:{label}"}
        )
        merged = merged.merge(renamed, on="arch")
    found = pd.read_csv(naswot)[["arch", "naswot"]]
    merged = merged.merge(found, on="arch", how="inner")
    if len(merged) < len(cells):
        raise SystemExit(f"error: {naswot} has naswot for {len(merged)} of {len(cells)} cells")
    return merged, list(tables)


def ensemble(table: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """The supernets' mean rank: each supernet's accuracy as a rank over the cells, averaged
    (over all cells: the ensemble is held against the truths across sizes too; within a size
    `params_then_mean_rank` ranks it again inside each group)."""
    return np.mean([ranks_over_all(table[f"sn:{label}"].to_numpy()) for label in labels], axis=0)


def interval(gain: tuple[float, float, float]) -> str:
    return f"{gain[0]:+.3f} ({gain[1]:+.3f}, {gain[2]:+.3f})"


def per_supernet(
    table: pd.DataFrame, labels: list[str], naswot_only: np.ndarray, n_boot: int
) -> tuple[list[str], dict[str, float]]:
    """Markdown rows, and each supernet's `score` tau against clean minus params+naswot's
    (`naswot_only`)."""
    params, truth = table["params"].to_numpy(), table["clean"]
    rows, margins = [], {}
    columns = {label: table[f"sn:{label}"] for label in labels}
    columns["mean of all"] = pd.Series(ensemble(table, labels))
    for label, supernet in columns.items():
        score = params_then_mean_rank(params, supernet, table["naswot"])
        taus = [
            f"{kendall(supernet, table[t]):.3f} / {kendall_within(supernet, table[t], params)[0]:.3f}"
            for t in TRUTHS
        ]
        over_params = tau_gain(score, params, truth, n_boot=n_boot)
        over_naswot = tau_gain(score, naswot_only, truth, n_boot=n_boot)
        within = kendall_within(score, truth, params)[0]
        rows.append(
            f"| {label} | " + " | ".join(taus) + f" | {kendall(score, truth):.3f} / {within:.3f} "
            f"| {interval(over_params)} | {interval(over_naswot)} |"
        )
        if label != "mean of all":
            margins[label] = over_naswot[0]
    return rows, margins


def agreement_rows(table: pd.DataFrame, labels: list[str]) -> list[str]:
    params = table["params"]
    rows = []
    for a, b in itertools.combinations(labels, 2):
        sa, sb = table[f"sn:{a}"], table[f"sn:{b}"]
        rows.append(
            f"| {a} | {b} | {kendall(sa, sb):.3f} | {kendall_within(sa, sb, params)[0]:.3f} |"
        )
    return rows


def report(table: pd.DataFrame, labels: list[str], command: str, n_boot: int) -> tuple[str, bool]:
    """The markdown, and whether the rule keeps params+(supernet,naswot) as the default."""
    params = table["params"].to_numpy()
    naswot_only = params_then_mean_rank(params, table["naswot"])
    rows, margins = per_supernet(table, labels, naswot_only, n_boot)
    mean_margin = float(np.mean(list(margins.values())))
    keep = mean_margin > 0
    verdict = (
        "keeps params+(supernet,naswot)" if keep else "makes params+naswot the default instead"
    )
    lines = [
        "# robnas rank's `score` over supernets trained by one recipe (NB201, clean, 32 epochs)",
        "",
        f"Command: `{command}`",
        "",
        f"{len(table)} cells, the same for every supernet. `supernet`: its clean accuracy with "
        "inherited weights (BatchNorm recalibrated per cell) on 5,000 held-out images; "
        "`a / b`: Kendall tau over all cells / pooled within equal parameter counts. `score` = "
        "params+(supernet,naswot); intervals: 95% paired bootstrap over the cells. `mean of all`: "
        "the supernets' mean rank in place of one supernet (costs every member's training).",
        "",
        "| supernet | vs clean | vs fgsm@1 | vs pgd@1 | score vs clean | score - #params (clean) "
        "| score - params+naswot (clean) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        f"| (no supernet) params+naswot | - | - | - | {kendall(naswot_only, table['clean']):.3f} / "
        f"{kendall_within(naswot_only, table['clean'], params)[0]:.3f} "
        f"| {interval(tau_gain(naswot_only, params, table['clean'], n_boot=n_boot))} | - |",
        f"| (no supernet) #params | - | - | - | {kendall(params, table['clean']):.3f} / - | - | - |",
        "",
        "How far the supernets agree with each other (Kendall tau of their clean accuracies over "
        "the cells / within equal parameter counts):",
        "",
        "| supernet | supernet | tau | within |",
        "|---|---|---|---|",
        *agreement_rows(table, labels),
        "",
        f"The declared rule: `score`'s tau against `clean` minus params+naswot's, averaged over "
        f"the {len(margins)} supernets, is {mean_margin:+.4f}, so the rule {verdict}.",
        "",
    ]
    return "\n".join(lines), keep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--supernet",
        action="append",
        required=True,
        metavar="LABEL=CSV",
        help="a supernet's per-cell table (repeat: one per supernet of the recipe)",
    )
    parser.add_argument("--naswot", type=Path, required=True, help="naswot of the same cells")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.csv")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    supernets = {}
    for item in args.supernet:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path).is_file():
            parser.error(f"--supernet takes LABEL=CSV with an existing CSV, got {item!r}")
        supernets[label] = Path(path)
    if len(supernets) < 2:
        parser.error("give at least two --supernet tables (one recipe, several seeds)")
    table, labels = load(supernets, args.naswot)
    given = " ".join(sys.argv[1:] if argv is None else argv)
    text, _ = report(
        table, labels, f"python experiments/supernet_seeds_nb201.py {given}", args.n_boot
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".md"), text)
    atomic_write_text(args.out.with_suffix(".csv"), table.to_csv(index=False))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
