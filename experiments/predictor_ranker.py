"""The predictor as a ranker: Kendall tau on the cells it was not trained on, beside #params'.

On the NB201 robustness dataset (one cell per isomorphism class, 6,466 classes), each repeat
draws k classes uniformly at random (k = 50, 100, 200), fits the predictor strategy's model (the
same `TreeEnsemble` on the same free `CellFeatures`, one model per objective) on their values,
and ranks every other class by the predicted mean. Reported against fgsm@1, pgd@1 and clean:
Kendall tau-b overall, and pooled within groups of equal parameter count (pairs of cells of
equal #params only: what a parameter budget leaves to rank), beside the parameter count's own
tau on the same cells (within equal counts it has no say: every pair is tied).

    python experiments/predictor_ranker.py [--k 50 100 200] [--repeats 10] \\
        [--signals CSV [CSV ...] --out DIR]

`--signals` also fits, on the same draws with the same tree seeds, a model on the free features
plus zero-cost indicators at initialisation read from per-cell tables of the whole space
(`TableSignals`; NAS-Bench-Suite-Zero's question: do proxies improve a predictor?), and reports
its taus beside the features-only model's.

Writes experiments/results/predictor_ranker/: predictor_ranker.{csv,md} and RUN.md.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _options import add_benchmark_argument

from robnas.analysis.nb201 import evaluated_indices  # noqa: E402
from robnas.data.tabular import load_benchmark  # noqa: E402
from robnas.ranking.metrics import kendall, kendall_within  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.strategies.features import CellFeatures  # noqa: E402
from robnas.strategies.predictor import Predictor, TreeEnsemble, finite_signals  # noqa: E402
from robnas.strategies.signal_table import TableSignals  # noqa: E402

HERE = Path(__file__).resolve().parent
NAME = "predictor_ranker"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_argument(parser)
    parser.add_argument("--k", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--objectives", nargs="+", default=["fgsm@1", "pgd@1", "clean"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / NAME)
    parser.add_argument("--signals", nargs="+", type=Path, default=[], metavar="CSV")
    args = parser.parse_args()

    start = time.perf_counter()
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    bench = load_benchmark(args.benchmark)
    # one genotype per isomorphism class, the one the dataset evaluated, and its table row
    indices = evaluated_indices(bench)
    genotypes, rows = [bench.genotypes[i] for i in indices], bench.rows[indices]
    features = CellFeatures(space, macro=macro, onehot=True)
    x_all = features.matrix(genotypes)
    params = x_all[:, features.names.index("num_params")]
    signals = TableSignals(space, args.signals) if args.signals else None
    args.signal_names = signals.names if signals is not None else ()
    if signals is not None:
        table = [signals(g) for g in genotypes]
        values = np.array([[row[n] for n in signals.names] for row in table], dtype=np.float64)
        x_signals = np.hstack([x_all, finite_signals(values)])
    defaults = Predictor(space, seed=0, objective="clean")  # the strategy's model settings
    out: list[dict[str, object]] = []
    for k in args.k:
        for repeat in range(args.repeats):
            rng = np.random.default_rng([args.seed, k, repeat])
            train = rng.choice(len(rows), size=k, replace=False)
            test = np.setdiff1d(np.arange(len(rows)), train)
            for objective in args.objectives:
                y = 100 * bench.table[rows, bench.column(objective)]
                tau, within, pairs = taus(x_all, y, train, test, params, defaults, repeat)
                row = {
                    "k": k,
                    "repeat": repeat,
                    "objective": objective,
                    "tau": tau,
                    "tau_within_params": within,
                    "within_pairs": pairs,
                    "params_tau": round(kendall(params[test], y[test]), 4),
                }
                if signals is not None:  # the same draw and tree seed, signals added
                    row["signals_tau"], row["signals_tau_within_params"], _ = taus(
                        x_signals, y, train, test, params, defaults, repeat
                    )
                out.append(row)
        print(f"k={k} done {time.perf_counter() - start:.0f}s", file=sys.stderr)
    write(out, args, time.perf_counter() - start)
    return 0


def taus(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    params: np.ndarray,
    defaults: Predictor,
    seed: int,
) -> tuple[float, float, int]:
    """The strategy's model fitted on the `train` cells of `x`: its Kendall tau on the `test`
    cells, overall and within equal #params, and the within pairs."""
    model = TreeEnsemble(trees=defaults.trees, max_features=defaults.max_features, seed=seed)
    mean, _ = model.fit(x[train], y[train]).predict(x[test])
    within, pairs = kendall_within(mean, y[test], list(params[test]))
    return round(kendall(mean, y[test]), 4), round(within, 4), pairs


def cpu_model() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor()
    found = [line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line]
    return found[0] if found else platform.processor()


def write(rows: list[dict[str, object]], args: argparse.Namespace, wall: float) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / f"{NAME}.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(args.out / f"{NAME}.csv")
    names = ", ".join(args.signal_names)
    extra_header = (
        f" + {names}: tau | + {names}: tau within equal #params |" if args.signal_names else ""
    )
    lines = [
        "The predictor as a ranker on the NB201 robustness dataset: trained on k uniformly drawn "
        f"isomorphism classes, ranking the other {6466} - k; {args.repeats} draws per k; mean "
        "(sample SD) of Kendall tau-b. within equal #params: pooled over the pairs of cells "
        "with the same parameter count (pairs: mean count). #params: the parameter count's tau "
        "on the same cells.",
        "",
        "| objective | k | predictor tau | #params tau | predictor tau within equal #params | pairs |"
        + extra_header,
        "|---|---|---|---|---|---|" + "---|" * 2 * bool(args.signal_names),
    ]
    for objective in args.objectives:
        for k in args.k:
            sel = [r for r in rows if r["objective"] == objective and r["k"] == k]

            def cell(key: str, sel: list[dict[str, object]] = sel) -> str:
                v = np.array([float(r[key]) for r in sel])  # type: ignore[arg-type]
                return f"{v.mean():.3f} ({v.std(ddof=1):.3f})"

            pairs = np.mean([float(r["within_pairs"]) for r in sel])  # type: ignore[arg-type]
            lines.append(
                f"| {objective} | {k} | {cell('tau')} | {cell('params_tau')} | "
                f"{cell('tau_within_params')} | {pairs:.0f} |"
                + (
                    f" {cell('signals_tau')} | {cell('signals_tau_within_params')} |"
                    if args.signal_names
                    else ""
                )
            )
    text = "\n".join(lines) + "\n"
    (args.out / f"{NAME}.md").write_text(text)
    import torch

    niceness = os.nice(0)
    command = ("" if not niceness else f"nice -n {niceness} ") + (
        "python experiments/predictor_ranker.py " + " ".join(sys.argv[1:])
    )
    (args.out / "RUN.md").write_text(
        f"# {NAME}\n\n- command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} {command}`\n"
        f"- machine: {cpu_model()}; {os.cpu_count()} cores shared with "
        f"other jobs\n- torch {torch.__version__}, numpy {np.__version__}\n"
        f"- wall time: {wall / 60:.1f} min\n"
    )
    print(text)


if __name__ == "__main__":
    sys.exit(main())
