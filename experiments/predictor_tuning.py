"""Tune the predictor strategy on development seeds of the NB201 robustness dataset.

Each configuration (a name and the strategy's keyword options as JSON) runs `--runs` searches of
`--queries` queries per objective, on repeat seeds derived from `--seed` (default 1000: the
reported table, `nb201_nas_table.py`, uses seed 0, so tuning never sees the reported runs).
Queries are counted as in the table: the first evaluation of an isomorphism class.

    python experiments/predictor_tuning.py --config ucb1='{"acquisition": "ucb", "kappa": 1}' \\
        --config ei='{"acquisition": "ei"}' [--runs 30] [--objectives fgsm@1 pgd@1] \\
        [--signals CSV [CSV ...]]

`--signals` gives every configuration zero-cost indicators read from per-cell tables of the whole
space (`TableSignals`; the options column names them as `"signals"`).

Appends to experiments/results/predictor_tuning/predictor_tuning.csv (one row per run: the best
value after 50 and after 100 queries) and rewrites predictor_tuning.md (means per configuration).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _options import add_benchmark_argument

from robnas.data.tabular import load_benchmark  # noqa: E402
from robnas.evaluators.tabular import TabularEvaluator  # noqa: E402
from robnas.search.tabular import repeat_seed, search_once  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.strategies import make_strategy  # noqa: E402
from robnas.strategies.signal_table import TableSignals  # noqa: E402

HERE = Path(__file__).resolve().parent
FIELDS = ["config", "options", "objective", "run", "best_50", "best_100", "seconds", "seed"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_argument(parser)
    parser.add_argument("--config", action="append", required=True, metavar="NAME=JSON")
    parser.add_argument("--strategy", default="predictor")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--objectives", nargs="+", default=["fgsm@1", "pgd@1"])
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "predictor_tuning")
    parser.add_argument("--signals", nargs="+", type=Path, default=[], metavar="CSV")
    args = parser.parse_args()

    path = args.out / "predictor_tuning.csv"
    if path.exists():
        with open(path) as handle:
            header = handle.readline().strip().split(",")
        if header != FIELDS:
            parser.error(f"{path} has the columns {header}, not {FIELDS}: pass another --out")
    space = get_space("nb201")
    bench = load_benchmark(args.benchmark)
    signals = TableSignals(space, args.signals) if args.signals else None
    args.out.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(",".join(FIELDS) + "\n")
    for spec in args.config:
        name, _, text = spec.partition("=")
        options = json.loads(text or "{}")
        recorded = {**options, "signals": ",".join(signals.names)} if signals else options
        if signals is not None:
            options["signals"] = signals
        for objective in args.objectives:
            evaluator = TabularEvaluator(bench, space, objective=objective)
            start = time.perf_counter()
            for run in range(args.runs):
                t0 = time.perf_counter()
                strategy = make_strategy(
                    args.strategy,
                    space,
                    seed=repeat_seed(args.seed, run),
                    objective=objective,
                    **options,
                )
                found = search_once(strategy, evaluator, args.queries)
                values = [100 * r.metrics[objective] for _, r in found.history]
                with open(path, "a", newline="") as handle:
                    csv.writer(handle).writerow(
                        [
                            name,
                            json.dumps(recorded, sort_keys=True),
                            objective,
                            run,
                            max(values[:50]),
                            max(values),
                            round(time.perf_counter() - t0, 2),
                            args.seed,
                        ]
                    )
            print(f"{name} {objective} {time.perf_counter() - start:.0f}s", file=sys.stderr)
    summarize(path, args.out / "predictor_tuning.md")
    return 0


def summarize(path: Path, out: Path) -> None:
    with open(path) as handle:
        rows = list(csv.DictReader(handle))

    def key(r: dict[str, str]) -> tuple[str, str, str, str]:
        return r["config"], r["options"], r["objective"], r["seed"]

    lines = [
        "Predictor tuning on development seeds (repeat seeds of --seed, the `seed` column; the "
        "reported table uses seed 0): mean (sample SD) of the best value found after 50 and 100 "
        "queries.",
        "",
        "| config | options | objective | seed | runs | best after 50 | best after 100 | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config, options, objective, seed in dict.fromkeys(key(r) for r in rows):
        sel = [r for r in rows if key(r) == (config, options, objective, seed)]
        cols = []
        for k in ("best_50", "best_100"):
            v = np.array([float(r[k]) for r in sel])
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            cols.append(f"{v.mean():.2f} ({sd:.2f})")
        secs = np.mean([float(r["seconds"]) for r in sel])
        lines.append(
            f"| {config} | `{options}` | {objective} | {seed} | {len(sel)} | "
            + " | ".join(cols)
            + f" | {secs:.1f} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
