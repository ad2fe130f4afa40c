"""What a budgeted search returns with each ranker: simulated on the NB201 cells whose signals are
committed (the two development draws and the third draw).

A search that scores k random in-budget cells with a ranker and keeps the best returns one cell;
its true clean / fgsm@1 / pgd@1 (from the robustness dataset) is what the user gets. Repeated over
many random k-subsets of the in-budget cells of a pool, beside the largest-cell rule (random among
ties), a random cell, and oracle random search (the truly best of the same k cells, per truth).
Every contender sees the same k cells in each repetition.

    python experiments/search_simulation_nb201.py --budget 600000 --repeats 2000 \\
        --out experiments/results/ranking_third_draw/search_simulation

Reads experiments/results/ranking_third_draw/ranking_third_draw.csv and, for the development
draws, oneshot_rank_nb201{,_fresh500}.csv with their NASWOT tables at C=16 N=5; the parameter
count is the deployed network's (C=16, N=5), the size the budget binds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.objectives.scores import path_features, robust_objective, score
from robnas.ranking.report import TRUTHS, ranks_over_all, simulated_search, with_rank_columns
from robnas.space.search_space import get_space

RESULTS = Path(__file__).resolve().parent / "results"
DEV = {
    "first": ("oneshot_rank_nb201.csv", "indicators_nb201_oneshot500_naswot_n5.csv"),
    "fresh": ("oneshot_rank_nb201_fresh500.csv", "indicators_nb201_fresh500_naswot_n5.csv"),
}
THIRD = RESULTS / "ranking_third_draw" / "ranking_third_draw.csv"
KS = (10, 30, 100)


def development(name: str) -> pd.DataFrame:
    cells, naswot = DEV[name]
    table = with_rank_columns(pd.read_csv(RESULTS / "oneshot_rank_nb201" / cells))
    table = table[["arch", *TRUTHS]]
    found = pd.read_csv(RESULTS / "indicators_nb201" / naswot)[["arch", "naswot"]]
    table = table.merge(found, on="arch", how="inner")
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")
    gs = [Genotype.from_str(f"nb201:{a}") for a in table["arch"]]
    table["params"] = [sizing.num_params(space, g, deployed, "cifar10") for g in gs]
    features = pd.DataFrame([path_features(g.cells[0]) for g in gs])
    return pd.concat([table.reset_index(drop=True), features], axis=1).assign(draw=name)


def third(path: Path) -> pd.DataFrame:
    cols = ["arch", "params", "naswot", "paths_nopool", "min_pool_per_path", "free_paths"]
    return pd.read_csv(path)[[*cols, *TRUTHS]].assign(draw="third")


def rankers(table: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One scalar per cell and ranker (higher is kept); the same scalars whatever the k cells."""
    params = table["params"].to_numpy(dtype=float)
    naswot = table["naswot"].to_numpy(dtype=float)
    # random among ties: a tiny random offset below the smallest difference of two sizes
    jitter = rng.random(len(table)) * 0.5
    return {
        "`robust_score` (search objective)": np.array(
            [
                robust_objective(a, b, p)
                for a, b, p in zip(table["min_pool_per_path"], table["free_paths"], params)
            ]
        ),
        "`score`": np.array(
            [score(p, n, q) for p, n, q in zip(params, naswot, table["paths_nopool"])]
        ),
        # NASWOT is -inf for a cell whose output ignores its input: a rank keeps it last
        "params+naswot (training-free)": params + ranks_over_all(naswot),
        "the largest cell (random among ties)": params + jitter,
    }


def simulate(table: pd.DataFrame, k: int, repeats: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return simulated_search(table, rankers(table, rng), k, repeats, rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=600_000, help="deployed parameters")
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--third", type=Path, default=THIRD, help="the third draw's table")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.csv")
    args = parser.parse_args(argv)
    if not args.third.exists():
        print(
            f"error: {args.third} is missing; run experiments/ranking_third_draw.py first",
            file=sys.stderr,
        )
        return 2
    pools = {
        "the third draw (declared rankers, new cells)": third(args.third),
        "all three draws": pd.concat(
            [development("first"), development("fresh"), third(args.third)], ignore_index=True
        ),
    }
    given = " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# What a budgeted search returns with each ranker (NB201, simulated)",
        "",
        f"Command: `python experiments/search_simulation_nb201.py {given}`",
        "",
        f"Budget: {args.budget:,} parameters of the deployed network (C=16, N=5). Each row: the "
        f"mean true accuracy of the cell kept from k random in-budget cells, over {args.repeats} "
        "repetitions; every contender sees the same k cells in a repetition. Oracle random search "
        "keeps the truly best of the k cells by one truth (the other columns are that cell's).",
    ]
    frames = []
    for label, pool in pools.items():
        inside = pool[pool["params"] <= args.budget].reset_index(drop=True)
        lines += ["", f"## {label}: {len(inside)} in-budget cells of {len(pool)}", ""]
        lines += ["| k | ranker | clean | fgsm@1 | pgd@1 |", "|---|---|---|---|---|"]
        for k in KS:
            if k > len(inside):
                continue
            result = simulate(inside, k, args.repeats, args.seed)
            frames.append(result.assign(pool=label))
            for r in result.to_dict("records"):
                values = " | ".join(f"{r[t]:.3f}" for t in TRUTHS)
                lines.append(f"| {k} | {r['ranker']} | {values} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    table = pd.concat(frames, ignore_index=True)
    atomic_write_text(args.out.with_suffix(".csv"), table.to_csv(index=False, float_format="%.4f"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
