"""Combined rankers on NB201: parameters across sizes, and within equal parameter counts the
supernet's accuracy, a training-free indicator, or both.

Reads the per-cell table of a one-shot ranking (`cells.csv` of `robnas rank` or of
experiments/oneshot_rank_nb201.py: `params`, `supernet_clean`, the dataset's `clean`, `fgsm@1`,
`pgd@1`; or the committed experiments/results/oneshot_rank_nb201/*.csv, which names them `clean` and
`true_*`) and the indicators of the same cells (experiments/indicators_nb201.py --archs-from), and
reports every ranker against every truth, overall and within equal parameter counts (several
indicator tables may be given: jac_norm/hessian_eig and naswot/zico come from separate runs). The
rankers were fixed before any of these numbers were seen (choosing among many after seeing them
would fit the 500 cells): each indicator is signed by its registered direction (jac_norm and
hessian_eig lower-is-better, naswot and zico higher), each within-group signal is a rank over the
cells, and a pair of signals is the mean of their two ranks; given naswot and jac_norm, one triple
too: the supernet, naswot and -jac_norm (declared before it was computed).

    python experiments/combine_nb201.py --cells experiments/results/oneshot_rank_nb201/oneshot_rank_nb201_long.csv \\
        --indicators experiments/results/indicators_nb201/indicators_nb201_oneshot500.csv \\
        experiments/results/indicators_nb201/indicators_nb201_oneshot500_zc.csv --out experiments/results/combine_nb201/combine_nb201
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from robnas.io import atomic_write_text
from robnas.ranking.metrics import tau_gain
from robnas.ranking.report import (
    TRUTHS,
    agreement_markdown,
    agreement_table,
    params_then_mean_rank,
    signed_indicator,
    with_rank_columns,
)

INDICATORS = ("jac_norm", "hessian_eig", "naswot", "zico")


def rankers(table: pd.DataFrame) -> pd.DataFrame:
    """The a-priori rankers as columns (higher predicts more robust)."""
    out = pd.DataFrame({"params": table["params"], "supernet": table["supernet_clean"]})
    signed = [signed_indicator(table, name) for name in INDICATORS if name in table]
    for label, values in signed:
        out[label] = values
    params = table["params"].to_numpy()
    for name in ["supernet", *(label for label, _ in signed)]:
        out[f"params+{name}"] = params_then_mean_rank(params, out[name])
    for label, values in signed:
        out[f"params+(supernet,{label})"] = params_then_mean_rank(params, out["supernet"], values)
    if "naswot" in out and "-jac_norm" in out:
        # declared before it was computed on any cells: the supernet and NASWOT
        # know clean accuracy within a size, -jac_norm robustness; the mean of the three ranks
        out["params+(supernet,naswot,-jac_norm)"] = params_then_mean_rank(
            params, out["supernet"], out["naswot"], out["-jac_norm"]
        )
    for truth in TRUTHS:
        out[truth] = table[truth]
    return out


def gain_markdown(scored: pd.DataFrame, names: list[str]) -> list[str]:
    lines = ["| ranker | " + " | ".join(TRUTHS) + " |", "|---|" + "---|" * len(TRUTHS)]
    for name in names:
        cells = []
        for truth in TRUTHS:
            gain, low, high = tau_gain(scored[name], scored["params"], scored[truth])
            cells.append(f"{gain:+.3f} ({low:+.3f}, {high:+.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, required=True, help="per-cell table of a ranking")
    parser.add_argument(
        "--indicators",
        type=Path,
        nargs="*",
        default=[],
        help="indicator tables of its cells (their columns replace the cells table's own: a "
        "`robnas rank` table already holds naswot)",
    )
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.csv")
    args = parser.parse_args(argv)
    cells = with_rank_columns(pd.read_csv(args.cells))
    table = cells
    for path in args.indicators:
        found = pd.read_csv(path)  # only its indicator columns (it may be a `robnas rank` table)
        found = found[["arch", *[c for c in INDICATORS if c in found]]]
        table = table.drop(columns=[c for c in found if c != "arch" and c in table])
        table = table.merge(found, on="arch", how="inner")
        if len(table) < len(cells):
            print(
                f"error: {path} has indicators for {len(table)} of the {len(cells)} cells "
                f"of {args.cells}; finish that run first",
                file=sys.stderr,
            )
            return 2
    scored = rankers(table)
    names = [c for c in scored.columns if c not in TRUTHS]
    agree = agreement_table(scored, names, TRUTHS)
    given = " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Combined rankers on NB201: parameters across sizes, supernet and indicators within",
        "",
        f"Command: `python experiments/combine_nb201.py {given}`",
        "",
        f"{len(table)} cells. `supernet`: the supernet's clean accuracy with inherited weights; "
        "`-jac_norm`, `-hessian_eig` (negated: lower predicts more robust), `naswot`, `zico`: "
        "the indicators of the given tables (at initialisation unless a table says otherwise); "
        "`params+X`: the parameter count first, X's rank within equal counts; "
        "`params+(supernet,X)`: within equal counts the mean of the two ranks (robnas rank's "
        "`score` was `params+supernet`, then `params+(supernet,naswot)` until the supernet seed "
        "study; now `params+naswot`); "
        "`params+(supernet,naswot,-jac_norm)`: the mean of the three. All fixed before the "
        "numbers were seen (naswot, zico and the triple added later, each declared before it was "
        "computed).",
        "",
        *agreement_markdown(agree),
        "",
        "Gain over the parameter count: each ranker's Kendall tau minus #params' against the same "
        "truth on the same cells, with a 95% paired bootstrap interval (2,000 resamples of the "
        "cells, seed 0). A ranker beats #params where the interval lies above 0.",
        "",
        *gain_markdown(scored, [n for n in names if n != "params"]),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    scored.insert(0, "arch", table["arch"])
    atomic_write_text(args.out.with_suffix(".csv"), scored.to_csv(index=False, float_format="%.6g"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
