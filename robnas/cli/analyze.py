"""`robnas analyze RUN`: test the robustness findings on a study run and write a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="test density/budget/FSP/indicator findings on a study run",
        description="Reads RUN/trials.csv (+ summary.json, config.json) and writes "
        "RUN/analysis/report.md with PNG plots and CSV tables.",
    )
    parser.add_argument("run", metavar="RUN", help="a study run directory")
    parser.add_argument("--out", metavar="DIR", help="output folder (default RUN/analysis)")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples (default 2000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--benchmark",
        metavar="DIR",
        help="NB201 robustness dataset folder for tabular NB201 studies "
        "(default: from the run config, else $ROBNAS_DATA/nb201-robustness)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robnas.analysis.report import analyze

    result = analyze(
        args.run,
        args.out,
        n_boot=args.bootstrap,
        seed=args.seed,
        benchmark_dir=Path(args.benchmark) if args.benchmark else None,
    )
    print(f"report: {result.report}")
    print(
        f"{result.n} trials, robust accuracy = {result.robust_key}; {len(result.files)} files written"
    )
    for line in result.headlines:
        print(f"  - {line}")
    return 0
