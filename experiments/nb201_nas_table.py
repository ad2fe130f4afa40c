"""Reproduce the NAS table of the NB201 robustness dataset paper (Jung et al., ICLR 2023).

For each objective, each strategy runs 100 independent searches of 100 queries on the tabular
benchmark and we report the mean +- sample standard deviation over runs of the returned
architecture's clean and robust accuracies at eps = 1/255, the objective's best value after half
the queries, how often the search returned the optimum (over the cells within `--budget`, if
given), the distinct isomorphism classes each run evaluated, its proposals, its cheap
evaluations (signals computed beside the queries; none by default) and its seconds per run.
Welch t-tests compare the predictor with every other strategy on the objective; a plot shows
the best value so far against the queries (mean and 95% band of the mean per strategy).

A query is the first evaluation of an isomorphism class (`SearchSpace.canonical`, the dataset's
6,466 classes), for every strategy: re-proposing an evaluated class, or an isomorph of one, is a
free cache hit, so no strategy gets free filtering the others lack.

    python experiments/nb201_nas_table.py [--runs 100] [--queries 100] [--objectives clean fgsm@1]
        [--budget 1M] [--resume] [--strategies predictor_signals --signals CSV [CSV ...]]

`predictor_signals` is the predictor that also learns from zero-cost indicators at
initialisation, read from per-cell tables of the whole space (`--signals`, written by
`indicators_nb201.py --archs 6466`): each cell the strategy computes signals for is charged the
CPU seconds its row recorded (`cheap CPU-s`), as if the run had computed them.

Writes experiments/results/nb201_nas_table/: nb201_nas_table.{csv,md} (one row per run, with its
best-so-far curve; the table and the Welch tests), nb201_nas_curves.png and RUN.md (command,
machine, torch, threads, wall time). The CSV is rewritten after every run; with --resume, the
runs already in it are kept and not run again; --merge adds the runs of other CSVs (parts run in
parallel, each with its own --out) before the table is written.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small GP solves: threads only contend
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _options import add_benchmark_argument
from scipy import stats  # noqa: E402

from robnas.data.tabular import REPORT_KEYS, TabularBenchmark, load_benchmark  # noqa: E402
from robnas.evaluators.tabular import TabularEvaluator  # noqa: E402
from robnas.genotype import Genotype  # noqa: E402
from robnas.search.tabular import repeat_seed, search_once  # noqa: E402
from robnas.space.budget import parse_budget  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.strategies import make_budget_predicate, make_strategy  # noqa: E402
from robnas.strategies.signal_table import TableSignals  # noqa: E402

HERE = Path(__file__).resolve().parent
STRATEGIES = ["random", "regularized_evolution", "local_search", "surrogate", "predictor"]
LABELS = {
    "random": "Random search",
    "regularized_evolution": "Regularized evolution",
    "local_search": "Local search",
    "surrogate": "Ours (GP surrogate, EI)",
    "predictor": "Ours (predictor: extra trees on cell features, Thompson)",
    "predictor_signals": "Ours (predictor + zero-cost indicators at init: {signals})",
}
#: the strategy the Welch tests compare with every other one
FOCUS = "predictor"
NAME = "nb201_nas_table"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_argument(parser)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--objectives", nargs="+", default=["clean", "fgsm@1", "pgd@1"])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", help="max parameters of the benchmark's network, e.g. 1M")
    parser.add_argument("--out", type=Path, default=HERE / "results" / NAME)
    parser.add_argument("--resume", action="store_true", help="keep the finished runs of the CSV")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=[],
        metavar="CSV",
        help="with --resume: also keep the runs of these CSVs (parts run in parallel with --out)",
    )
    parser.add_argument(
        "--signals",
        nargs="+",
        type=Path,
        default=[],
        metavar="CSV",
        help="per-cell indicator tables of the whole space, for the predictor_signals strategy",
    )
    args = parser.parse_args()
    if "predictor_signals" in args.strategies and not args.signals:
        parser.error("the predictor_signals strategy needs --signals CSV [CSV ...]")

    space = get_space("nb201")
    signals = TableSignals(space, args.signals) if args.signals else None
    if signals is not None:
        LABELS["predictor_signals"] = LABELS["predictor_signals"].format(
            signals=", ".join(signals.names)
        )
    bench = load_benchmark(args.benchmark)
    budget = parse_budget(args.budget) if args.budget else None
    feasible = make_budget_predicate(space, budget, space.resolve_macro("paper"))
    rows: list[dict[str, object]] = read_rows(args.out / f"{NAME}.csv") if args.resume else []
    done = {(str(r["objective"]), str(r["strategy"]), int(str(r["run"]))) for r in rows}
    for part in args.merge if args.resume else []:
        for row in read_rows(part):
            key = (str(row["objective"]), str(row["strategy"]), int(str(row["run"])))
            if key not in done:
                done.add(key)
                rows.append(row)
    optima: dict[str, tuple[float, str]] = {}
    total = time.perf_counter()
    for objective in args.objectives:
        evaluator = TabularEvaluator(bench, space, objective=objective)
        optima[objective] = bench.optimum(objective, None if budget is None else feasible)
        optimum = optima[objective][0]
        for name in args.strategies:
            if all((objective, name, run) in done for run in range(args.runs)):
                continue
            start = time.perf_counter()
            for run in range(args.runs):
                if (objective, name, run) in done:
                    continue
                began = time.perf_counter()
                options = {"signals": signals} if name == "predictor_signals" else {}
                strategy = make_strategy(
                    name.removesuffix("_signals"),
                    space,
                    seed=repeat_seed(args.seed, run),
                    objective=objective,
                    feasible=feasible,
                    **options,
                )
                found = search_once(strategy, evaluator, args.queries)
                seconds = time.perf_counter() - began
                metrics = bench.metrics(space.parse(found.genotype), REPORT_KEYS)
                classes = {space.canonical(space.parse(q)) for q in found.queried}
                curve = np.maximum.accumulate(
                    [100 * r.metrics[objective] for _, r in found.history]
                )
                rows.append(
                    {
                        "objective": objective,
                        "strategy": name,
                        "run": run,
                        "genotype": found.genotype,
                        "optimum": int(metrics[objective] == optimum),
                        "classes": len(classes),
                        "asks": found.asks,
                        "cheap_evaluations": int(getattr(strategy, "cheap_evaluations", 0)),
                        "cheap_seconds": round(float(getattr(strategy, "cheap_seconds", 0.0)), 2),
                        "seconds": round(seconds, 3),
                        **metrics,
                        "best_so_far": " ".join(f"{v:.2f}" for v in curve),
                    }
                )
                write_csv(rows, args.out)  # every finished run is kept, should a long run stop
            took = time.perf_counter() - start
            print(f"{objective:8s} {name:24s} {took:7.1f}s", file=sys.stderr)
            write(rows, args, bench, optima)  # the finished part, should a long run stop
    wall = time.perf_counter() - total
    print(f"total {wall:.1f}s", file=sys.stderr)
    print(write(rows, args, bench, optima, wall=wall))
    return 0


def read_rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write(
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    bench: TabularBenchmark,
    optima: dict[str, tuple[float, str]],
    wall: float | None = None,
) -> str:
    write_csv(rows, args.out)
    done = argparse.Namespace(**vars(args))
    done.objectives = [o for o in args.objectives if any(r["objective"] == o for r in rows)]
    table = markdown(rows, done, bench, optima) + "\n" + welch(rows, done)
    atomic_text(args.out / f"{NAME}.md", table)
    plot(rows, done, args.out / "nb201_nas_curves.png")
    if wall is not None:
        atomic_text(args.out / "RUN.md", run_notes(args, wall))
    return table


def write_csv(rows: list[dict[str, object]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{NAME}.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        # rows of older runs may lack a later column (cheap_seconds): the union, in order
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out / f"{NAME}.csv")


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def select(rows: list[dict[str, object]], objective: str, name: str) -> list[dict[str, object]]:
    return [r for r in rows if r["objective"] == objective and r["strategy"] == name]


def curves(sel: list[dict[str, object]]) -> np.ndarray:
    """[runs, queries]: the best objective value (%) after each query."""
    return np.array([[float(v) for v in str(r["best_so_far"]).split()] for r in sel])


def markdown(
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    bench: TabularBenchmark,
    optima: dict[str, tuple[float, str]],
) -> str:
    within = f" within {args.budget} parameters" if args.budget else ""
    half = args.queries // 2
    lines = [
        f"NAS on the NB201 robustness dataset (CIFAR-10): {args.runs} runs x {args.queries} queries "
        "per strategy; mean +- sample standard deviation (%) over runs of the returned "
        "architecture; eps = 1/255. A query is the first evaluation of an isomorphism class, for "
        f"every strategy. at {half}: the objective's best value after {half} queries (mean); "
        f"optimum: the best cell{within}; classes: distinct isomorphism classes evaluated per run "
        "(mean); asks: proposals per run (mean), re-proposals of evaluated classes are free; "
        "cheap: signals computed per run beside the queries (mean); cheap CPU-s: their compute "
        "per run (mean); s/run: wall seconds per search, model fits included.",
        "",
        "| objective | strategy | "
        + " | ".join(REPORT_KEYS)
        + f" | at {half} | found optimum | classes | asks | cheap | cheap CPU-s | s/run |",
        "|---|---|" + "---|" * len(REPORT_KEYS) + "---|---|---|---|---|---|---|",
    ]
    for objective in args.objectives:
        best = Genotype.from_str(optima[objective][1])
        opt = {k: 100 * bench.value(best, k) for k in REPORT_KEYS}
        lines.append(
            f"| {objective} | optimum | "
            + " | ".join(f"{opt[k]:.2f}" for k in REPORT_KEYS)
            + " | | | | | | | |"
        )
        for name in args.strategies:
            sel = select(rows, objective, name)
            if not sel:
                continue
            cells = []
            for k in REPORT_KEYS:
                values = 100 * np.array([float(r[k]) for r in sel])  # type: ignore[arg-type]
                text = f"{values.mean():.2f} +- {values.std(ddof=1):.2f}"
                cells.append(f"**{text}**" if k == objective else text)
            at_half = curves(sel)[:, half - 1].mean()

            def mean(key: str, sel: list[dict[str, object]] = sel) -> float:
                # a column older runs lack (cheap_seconds) counts 0 for them: they computed none
                return float(np.mean([float(r.get(key) or 0) for r in sel]))  # type: ignore[arg-type]

            lines.append(
                f"| {objective} | {LABELS.get(name, name)} | "
                + " | ".join(cells)
                + f" | {at_half:.2f} | {100 * mean('optimum'):.0f}% | {mean('classes'):.1f}"
                f" | {mean('asks'):.1f} | {mean('cheap_evaluations'):.0f}"
                f" | {mean('cheap_seconds'):.1f} | {mean('seconds'):.2f} |"
            )
    return "\n".join(lines) + "\n"


def welch(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    """Welch t-tests of the focus strategy against every other one, on each objective."""
    if FOCUS not in args.strategies:
        return ""
    lines = [
        f"Welch t-tests (unequal variances, two-sided) of {LABELS[FOCUS]} against each "
        "strategy on the objective's value of the returned architecture; difference = focus "
        "minus other, in points.",
        "",
        "| objective | other | focus mean | other mean | difference | t | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for objective in args.objectives:
        mine = 100 * np.array([float(r[objective]) for r in select(rows, objective, FOCUS)])  # type: ignore[arg-type]
        if len(mine) < 2:
            continue
        for name in args.strategies:
            other_rows = select(rows, objective, name)
            if name == FOCUS or len(other_rows) < 2:
                continue
            other = 100 * np.array([float(r[objective]) for r in other_rows])  # type: ignore[arg-type]
            t, p = stats.ttest_ind(mine, other, equal_var=False)
            lines.append(
                f"| {objective} | {LABELS.get(name, name)} | {mine.mean():.2f} | {other.mean():.2f}"
                f" | {mine.mean() - other.mean():+.2f} | {t:.2f} | {p:.2g} |"
            )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, object]], args: argparse.Namespace, path: Path) -> None:
    """Best value so far against queries: mean and 95% t-interval of the mean per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(args.objectives), figsize=(5.2 * len(args.objectives), 4.2), squeeze=False
    )
    for ax, objective in zip(axes[0], args.objectives, strict=True):
        lows = []
        for name in args.strategies:
            sel = select(rows, objective, name)
            if len(sel) < 2:
                continue
            c = curves(sel)
            x = np.arange(1, c.shape[1] + 1)
            mean = c.mean(axis=0)
            half = stats.t.ppf(0.975, len(c) - 1) * c.std(axis=0, ddof=1) / np.sqrt(len(c))
            ax.plot(x, mean, label=LABELS.get(name, name), lw=1.5)
            ax.fill_between(x, mean - half, mean + half, alpha=0.2)
            lows.append(mean[min(19, len(mean) - 1)])
        ax.set_title(f"objective {objective}")
        ax.set_xlabel("queries (isomorphism classes evaluated)")
        ax.set_ylabel(f"best {objective} so far (%)")
        if lows:
            top = max(
                float(curves(select(rows, objective, s)).max())
                for s in args.strategies
                if select(rows, objective, s)
            )
            ax.set_ylim(min(lows) - 0.5, top + 0.3)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"NB201 robustness dataset: {args.runs} runs per strategy, mean and 95% band")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run_notes(args: argparse.Namespace, wall: float) -> str:
    import torch

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            platform.processor(),
        )
    except (OSError, subprocess.SubprocessError):
        model = platform.processor()
    command = "python experiments/nb201_nas_table.py " + " ".join(sys.argv[1:])
    niceness = os.nice(0)
    if niceness:
        command = f"nice -n {niceness} {command}"
    return (
        f"# {NAME}\n\n"
        f"- command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} {command}`\n"
        f"- machine: {model} ({os.cpu_count()} cores, shared with other jobs)\n"
        f"- torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}\n"
        f"- wall time of this invocation: {wall / 60:.1f} min"
        + (" (a --resume run: the runs kept from the CSV are not in it)" if args.resume else "")
        + "\n- outputs: nb201_nas_table.csv (one row per run, best-so-far curve in %), "
        "nb201_nas_table.md (table + Welch tests), nb201_nas_curves.png\n"
    )


if __name__ == "__main__":
    sys.exit(main())
