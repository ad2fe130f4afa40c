"""Reproduce the NAS table of the NB201 robustness dataset paper (Jung et al., ICLR 2023).

For each objective, each strategy runs 100 independent searches of 100 queries on the tabular
benchmark and we report the mean +- std over runs of the returned architecture's clean and
robust accuracies at eps = 1/255, how often the search returned the optimum (over the cells within
`--budget`, if given), the distinct isomorphism classes each run evaluated and its proposals.

A query is the first evaluation of an isomorphism class (`SearchSpace.canonical`, the dataset's
6,466 classes), for every strategy: re-proposing an evaluated class, or an isomorph of one, is a
free cache hit, so no strategy gets free filtering the others lack.

    python experiments/nb201_nas_table.py [--runs 100] [--queries 100] [--objectives clean fgsm@1]
        [--budget 1M]

Writes experiments/results/nb201_nas_table/nb201_nas_table.{csv,md} and prints the markdown table.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small GP solves: threads only contend

import numpy as np  # noqa: E402

from robnas.data.tabular import REPORT_KEYS, TabularBenchmark, load_benchmark  # noqa: E402
from robnas.evaluators.tabular import TabularEvaluator  # noqa: E402
from robnas.genotype import Genotype  # noqa: E402
from robnas.search.tabular import repeat_seed, search_once  # noqa: E402
from robnas.space.budget import parse_budget  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.strategies import make_budget_predicate, make_strategy  # noqa: E402

HERE = Path(__file__).resolve().parent
STRATEGIES = ["random", "regularized_evolution", "local_search", "surrogate"]
LABELS = {
    "random": "Random search",
    "regularized_evolution": "Regularized evolution",
    "local_search": "Local search",
    "surrogate": "Ours (GP surrogate, EI)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        "--benchmark",
        type=Path,
        default=Path(data) / "nb201-robustness" if data else None,
        required=not data,
        help="the NB201 robustness dataset folder (default: $ROBNAS_DATA/nb201-robustness)",
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--objectives", nargs="+", default=["clean", "fgsm@1", "pgd@1"])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", help="max parameters of the benchmark's network, e.g. 1M")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "nb201_nas_table")
    args = parser.parse_args()

    space = get_space("nb201")
    bench = load_benchmark(args.benchmark)
    budget = parse_budget(args.budget) if args.budget else None
    feasible = make_budget_predicate(space, budget, space.resolve_macro("paper"))
    rows: list[dict[str, object]] = []
    optima: dict[str, tuple[float, str]] = {}
    total = time.perf_counter()
    for objective in args.objectives:
        evaluator = TabularEvaluator(bench, space, objective=objective)
        optima[objective] = bench.optimum(objective, None if budget is None else feasible)
        optimum = optima[objective][0]
        for name in args.strategies:
            start = time.perf_counter()
            for run in range(args.runs):
                strategy = make_strategy(
                    name,
                    space,
                    seed=repeat_seed(args.seed, run),
                    objective=objective,
                    feasible=feasible,
                )
                found = search_once(strategy, evaluator, args.queries)
                metrics = bench.metrics(space.parse(found.genotype), REPORT_KEYS)
                classes = {space.canonical(space.parse(q)) for q in found.queried}
                rows.append(
                    {
                        "objective": objective,
                        "strategy": name,
                        "run": run,
                        "genotype": found.genotype,
                        "optimum": int(metrics[objective] == optimum),
                        "classes": len(classes),
                        "asks": found.asks,
                        **metrics,
                    }
                )
            took = time.perf_counter() - start
            print(f"{objective:8s} {name:24s} {took:7.1f}s", file=sys.stderr)
            write(rows, args, bench, optima)  # the finished part, should a long run stop
    print(f"total {time.perf_counter() - total:.1f}s", file=sys.stderr)
    print(write(rows, args, bench, optima))
    return 0


def write(
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    bench: TabularBenchmark,
    optima: dict[str, tuple[float, str]],
) -> str:
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "nb201_nas_table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = argparse.Namespace(**vars(args))
    done.objectives = list(dict.fromkeys(str(r["objective"]) for r in rows))
    table = markdown(rows, done, bench, optima)
    (args.out / "nb201_nas_table.md").write_text(table)
    return table


def markdown(
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    bench: TabularBenchmark,
    optima: dict[str, tuple[float, str]],
) -> str:
    within = f" within {args.budget} parameters" if args.budget else ""
    lines = [
        f"NAS on the NB201 robustness dataset (CIFAR-10): {args.runs} runs x {args.queries} queries "
        "per strategy; mean +- std (%) of the returned architecture; eps = 1/255. A query is the "
        "first evaluation of an isomorphism class, for every strategy. optimum: the best cell"
        f"{within}; classes: distinct isomorphism classes evaluated per run (mean); asks: "
        "proposals per run (mean), re-proposals of evaluated classes are free.",
        "",
        "| objective | strategy | "
        + " | ".join(REPORT_KEYS)
        + " | found optimum | classes | asks |",
        "|---|---|" + "---|" * len(REPORT_KEYS) + "---|---|---|",
    ]
    for objective in args.objectives:
        best = Genotype.from_str(optima[objective][1])
        opt = {k: 100 * bench.value(best, k) for k in REPORT_KEYS}
        lines.append(
            f"| {objective} | optimum | "
            + " | ".join(f"{opt[k]:.2f}" for k in REPORT_KEYS)
            + " | | | |"
        )
        for name in args.strategies:
            sel = [r for r in rows if r["objective"] == objective and r["strategy"] == name]
            if not sel:
                continue
            cells = []
            for k in REPORT_KEYS:
                values = 100 * np.array([float(r[k]) for r in sel])  # type: ignore[arg-type]
                text = f"{values.mean():.2f} +- {values.std():.2f}"
                cells.append(f"**{text}**" if k == objective else text)
            hits = np.mean([int(r["optimum"]) for r in sel])  # type: ignore[call-overload]
            classes = np.mean([int(r["classes"]) for r in sel])  # type: ignore[call-overload]
            asks = np.mean([int(r["asks"]) for r in sel])  # type: ignore[call-overload]
            lines.append(
                f"| {objective} | {LABELS.get(name, name)} | "
                + " | ".join(cells)
                + f" | {100 * hits:.0f}% | {classes:.1f} | {asks:.1f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
