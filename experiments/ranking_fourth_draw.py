"""`robust_forest` (robnas/ranking/forest.py) on a fourth NB201 draw: 500 isomorph classes that
none of its 1,500 training cells (the three earlier draws) belongs to.

The forest is fitted on the earlier draws' cells with the dataset's fgsm@1 and pgd@1, then
predicts every cell of the fourth draw from its free graph features; only then are the fourth
draw's accuracies read. Reported beside it: the parameter count, the declared `robust_score`
(robnas/objectives/scores.py) and its two path signals, with the third draw's bootstrap
intervals; and what a search that scores k random in-budget cells of the draw keeps.

    python experiments/ranking_fourth_draw.py --out experiments/results/ranking_fourth_draw

`--development` prints instead the evidence the forest was declared on: fitted on two of the
earlier draws, its taus on the third, for each held-out draw (no fourth-draw cell is read).

Writes OUT/ranking_fourth_draw.csv (`arch`, `params`, `robust_forest`, `robust_score`, the path
signals, then the dataset's `clean`, `fgsm@1`, `pgd@1`) and OUT/ranking_fourth_draw.md. Seconds
of CPU: no network is built and no image is read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.data.tabular import load_benchmark
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.objectives.scores import (
    ROBUST_SCORE_DEFINITION,
    path_features,
    robust_objective,
    robust_score,
)
from robnas.ranking.forest import ROBUST_FOREST_DEFINITION, TARGETS, RobustForest
from robnas.ranking.metrics import kendall, kendall_within
from robnas.ranking.report import (
    TRUTHS,
    declared_agreement_lines,
    draw_disjoint_classes,
    simulated_search,
)
from robnas.space.search_space import get_space

RESULTS = Path(__file__).resolve().parent / "results"
#: the forest's training cells: every NB201 cell an earlier ranking study scored
TRAINING = (
    RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201.csv",
    RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201_fresh500.csv",
    RESULTS / "ranking_third_draw" / "ranking_third_draw.csv",
)
KS = (10, 30, 100)


def genotypes(archs: list[str]) -> list[Genotype]:
    return [Genotype.from_str(f"nb201:{a}") for a in archs]


def fitted_forest(bench, training: list[str]) -> RobustForest:
    space = get_space("nb201")
    gs = genotypes(training)
    truths = {key: [bench.value(g, key) for g in gs] for key in TARGETS}
    return RobustForest(space, space.resolve_macro("paper")).fit(gs, truths)


def signals(forest: RobustForest, archs: list[str]) -> pd.DataFrame:
    """Every ranker's value per cell, from the cell alone (no ground truth)."""
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")  # C=16, N=5: the size the budget binds
    gs = genotypes(archs)
    table = pd.DataFrame([path_features(g.cells[0]) for g in gs])
    table.insert(0, "arch", archs)
    table.insert(1, "params", [sizing.num_params(space, g, deployed, "cifar10") for g in gs])
    table.insert(2, "robust_forest", forest.predict(gs))
    table.insert(
        3,
        "robust_score",
        [robust_score(a, b) for a, b in zip(table["min_pool_per_path"], table["free_paths"])],
    )
    return table


def search_lines(table: pd.DataFrame, budget: int, repeats: int, seed: int) -> list[str]:
    inside = table[table["params"] <= budget].reset_index(drop=True)
    lines = [
        f"## What a search keeps: {len(inside)} in-budget cells of {len(table)} "
        f"(budget {budget:,} deployed parameters)",
        "",
        f"The mean true accuracy of the cell kept from k random in-budget cells, over {repeats} "
        "draws of k; every contender sees the same k cells in a draw. `robust_forest` keeps its "
        "highest prediction; `robust_score` keeps its search objective (ties to the larger cell).",
        "",
        "| k | ranker | clean | fgsm@1 | pgd@1 |",
        "|---|---|---|---|---|",
    ]
    for k in KS:
        if k > len(inside):
            continue
        rng = np.random.default_rng(seed)
        params = inside["params"].to_numpy(dtype=float)
        scores = {
            "`robust_forest`": inside["robust_forest"].to_numpy(dtype=float),
            "`robust_score` (search objective)": np.array(
                [
                    robust_objective(a, b, p)
                    for a, b, p in zip(inside["min_pool_per_path"], inside["free_paths"], params)
                ]
            ),
            # random among ties: an offset below the smallest difference of two sizes
            "the largest cell (random among ties)": params + rng.random(len(inside)) * 0.5,
        }
        result = simulated_search(inside, scores, k, repeats, rng)
        for r in result.to_dict("records"):
            values = " | ".join(f"{r[t]:.3f}" for t in TRUTHS)
            lines.append(f"| {k} | {r['ranker']} | {values} |")
    return lines


def development_lines(bench) -> list[str]:
    """Leave one earlier draw out: fit on the other two, rank the held-out one."""
    lines = [
        "| held-out draw | truth | Kendall tau (#params) | tau within equal params |",
        "|---|---|---|---|",
    ]
    draws = {path.name: list(pd.read_csv(path)["arch"]) for path in TRAINING}
    for name, held in draws.items():
        training = [a for other, archs in draws.items() if other != name for a in archs]
        table = signals(fitted_forest(bench, training), held)
        cells = genotypes(held)
        for t in TRUTHS:
            truth = [bench.value(g, t) for g in cells]
            tau, base = kendall(table["robust_forest"], truth), kendall(table["params"], truth)
            within = kendall_within(table["robust_forest"], truth, table["params"].tolist())[0]
            lines.append(f"| {name} | {t} | {tau:.3f} ({base:.3f}) | {within:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument("--data", type=Path, default=Path(data) if data else None)
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=4, help="the draw's seed")
    parser.add_argument("--budget", type=int, default=600_000, help="deployed parameters")
    parser.add_argument("--repeats", type=int, default=2000, help="simulated searches per k")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", type=Path, help="the folder for the fourth draw's tables")
    parser.add_argument(
        "--development", action="store_true", help="only the earlier draws, leaving one out"
    )
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("set ROBNAS_DATA or pass --data")
    if args.out is None and not args.development:
        parser.error("pass --out DIR (or --development)")
    bench = load_benchmark(args.data / "nb201-robustness")
    if args.development:
        print("\n".join(development_lines(bench)))
        return 0
    training = [a for path in TRAINING for a in pd.read_csv(path)["arch"]]
    try:
        archs = draw_disjoint_classes(bench, get_space("nb201"), args.archs, args.seed, training)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = signals(fitted_forest(bench, training), archs)
    cells = genotypes(archs)
    for t in TRUTHS:  # the fourth draw's accuracies enter only here, after every prediction
        table[t] = [bench.value(g, t) for g in cells]
    given = " ".join(sys.argv[1:] if argv is None else argv)
    names = ["robust_forest", "robust_score", "min_pool_per_path", "free_paths"]
    lines = [
        "# `robust_forest` on a fourth NB201 draw",
        "",
        f"Command: `python experiments/ranking_fourth_draw.py {given}`",
        "",
        f"{len(table)} isomorph classes drawn uniformly (seed {args.seed}), none of them a class "
        f"of the forest's {len(training)} training cells (the cells of "
        + ", ".join(p.name for p in TRAINING)
        + "). Declared in robnas/ranking/forest.py before this run:",
        "",
        f"- {ROBUST_FOREST_DEFINITION}",
        f"- {ROBUST_SCORE_DEFINITION}",
        "",
        f"Intervals: {args.n_boot} bootstrap resamples of the cells (seed 0); the gain over #params "
        "is paired. Within equal params the parameter count ties every pair (tau 0).",
        "",
        *declared_agreement_lines(table, names, args.n_boot),
        "",
        *search_lines(table, args.budget, args.repeats, 0),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "ranking_fourth_draw.md", "\n".join(lines) + "\n")
    atomic_write_text(
        args.out / "ranking_fourth_draw.csv", table.to_csv(index=False, float_format="%.6g")
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
