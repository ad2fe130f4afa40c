"""Training-free indicators on NB201 against the robustness dataset (Jung, Lukasik and Keuper, ICLR 2023).

For uniformly drawn isomorph classes of NB201, computes the input-Jacobian norm (`jac_norm`) and the
largest eigenvalue of the input Hessian of the loss (`hessian_eig`) on seeded initialisations
(training-free, as in the dataset paper) over one fixed batch of CIFAR-10 training images, then the
Kendall tau of each indicator (signed by its registered direction: these two lower-is-better)
against the dataset's accuracies: clean, and FGSM and PGD at every eps. `--indicators` also takes
the zero-cost accuracy proxies `naswot` and `zico` (higher is better). Resumable: rows already in the CSV are kept.

    python experiments/indicators_nb201.py [--archs 200] [--images 64] [--C 16 --N 1] [--seed 0]
        [--indicators jac_norm,hessian_eig,naswot,zico] [--archs-from CSV --out PATH]

`--archs-from` scores the `arch` column of another result (e.g. the one-shot ranking's 500 cells)
instead of a fresh draw, so the indicators can be set beside (and combined with) its scores.

Writes experiments/results/indicators_nb201/indicators_nb201.csv (`arch`, `jac_norm`, `hessian_eig`, `params`,
`seconds`: the CPU seconds of the row's network and indicators) and
experiments/results/indicators_nb201/indicators_nb201.md (command, wall time, machine, tau table).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from robnas import models
from robnas.data.datasets import load_dataset
from robnas.data.tabular import load_benchmark
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.io import atomic_write_text
from robnas.ranking.metrics import kendall_within, tau_gain
from robnas.ranking.report import draw_classes, params_then_mean_rank
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent
NAMES = ("jac_norm", "hessian_eig", "naswot", "zico")
DEFAULT = ("jac_norm", "hessian_eig")
GAIN_TRUTHS = ("clean", "fgsm@1", "pgd@1")


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with path.open() as f:
        return {r["arch"]: r for r in csv.DictReader(f)}


def draw_fresh(bench, args) -> list[str]:
    """`--archs` classes drawn uniformly (seed `--seed`), none of them a class of `--exclude`."""
    if args.exclude is None:
        return draw_classes(bench.rows, bench.strings, args.archs, args.seed)
    space = get_space("nb201")
    with args.exclude.open() as f:
        taken = {canonical(space, f"nb201:{r['arch']}") for r in csv.DictReader(f)}
    pool = draw_classes(bench.rows, bench.strings, args.archs + len(taken), args.seed)
    fresh = [a for a in pool if canonical(space, f"nb201:{a}") not in taken]
    return fresh[: args.archs]


def canonical(space, text: str) -> str:
    return space.canonical(Genotype.from_str(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        "--data",
        type=Path,
        default=data,
        required=not data,
        help="data folder (default: $ROBNAS_DATA)",
    )
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--indicators", default=",".join(DEFAULT), help="comma list of " + ", ".join(NAMES)
    )
    parser.add_argument("--archs-from", type=Path, help="score this CSV's arch column, not a draw")
    parser.add_argument(
        "--exclude",
        type=Path,
        help="draw only classes not in this CSV's arch column (a fresh sample, to replicate)",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "indicators_nb201" / "indicators_nb201"
    )
    args = parser.parse_args()
    args.names = tuple(n for n in args.indicators.split(",") if n)
    if not args.names or set(args.names) - set(NAMES):
        parser.error(f"--indicators must name some of {', '.join(NAMES)}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    bench = load_benchmark(args.data / "nb201-robustness")
    space = get_space("nb201")
    macro = {**space.resolve_macro("paper"), "C": args.C, "N": args.N}
    images = load_dataset("cifar10", "train", data_dir=args.data, limit=args.images, seed=args.seed)
    x, y = images.floats(), images.labels
    if args.archs_from is not None:
        with args.archs_from.open() as f:
            archs = [r["arch"] for r in csv.DictReader(f)]
        args.archs = len(archs)
    else:
        archs = draw_fresh(bench, args)
    fields = ("arch", *args.names, "params", "seconds")
    csv_path = args.out.with_suffix(".csv")
    done = read_rows(csv_path)
    cfg = {"jac_method": "exact", "hessian_iterations": args.iterations, "seed": args.seed}
    start = time.perf_counter()
    for i, arch in enumerate(archs):
        missing = [n for n in args.names if not done.get(arch, {}).get(n)]
        if not missing:
            continue
        g = Genotype.from_str(f"nb201:{arch}")
        cell_start = time.process_time()
        torch.manual_seed(args.seed)  # seeded initialisation, the same for every cell
        model = models.build(space, g, macro, "cifar10").eval()
        row = {**done.get(arch, {}), "arch": arch}
        row["params"] = str(sum(p.numel() for p in model.parameters()))
        for name in missing:  # a rerun adding an indicator keeps the values already there
            row[name] = repr(INDICATORS.get(name)(model, x, y, cfg=cfg)[name])
        # CPU seconds of this row's network and indicators, what a search computing them pays
        # (a rerun adding an indicator adds its time; the network built twice is counted twice)
        before = float(row.get("seconds") or 0)
        row["seconds"] = f"{before + time.process_time() - cell_start:.3f}"
        done[arch] = row
        ordered = [done[a] for a in archs if a in done]
        text = (
            ",".join(fields)
            + "\n"
            + "".join(",".join(r.get(f, "") for f in fields) + "\n" for r in ordered)
        )
        atomic_write_text(csv_path, text)  # every row durable before the next
        print(f"[{i + 1}/{len(archs)}] {arch} {row}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    write_summary(args, bench, archs, done, seconds)
    return 0


def gain_lines(bench, gs, rows, names, sign, label) -> list[str]:
    """`params+X` (the parameter count first, X's rank within equal counts, as robnas rank
    combines them): its tau minus #params' with a 95% paired bootstrap interval."""
    params = np.array([float(r["params"]) for r in rows])
    lines = [
        "`params+X`: the parameter count first, the indicator's rank within equal counts. Its "
        "Kendall tau minus #params' against the same truth on the same cells, with a 95% paired "
        "bootstrap interval (2,000 resamples of the cells, seed 0); it beats #params where the "
        "interval lies above 0.",
        "",
        "| ranker | " + " | ".join(GAIN_TRUTHS) + " |",
        "|---|" + "---|" * len(GAIN_TRUTHS),
    ]
    truths = {t: np.array([bench.value(g, t) for g in gs]) for t in GAIN_TRUTHS}
    for key in names:
        values = sign[key] * np.array([float(r[key]) for r in rows])
        ranker = params_then_mean_rank(params, values)
        cells = [tau_gain(ranker, params, truths[t]) for t in GAIN_TRUTHS]
        lines.append(
            f"| params+{label[key]} | "
            + " | ".join(f"{g:+.3f} ({lo:+.3f}, {hi:+.3f})" for g, lo, hi in cells)
            + " |"
        )
    return lines


def write_summary(args, bench, archs, done, seconds: float) -> None:
    eps = {"fgsm": (0.1, 0.5, 1, 2, 3, 4, 8), "pgd": (0.1, 0.5, 1, 2, 3, 4, 8)}
    targets = ["clean"] + [f"{a}@{e:g}" for a, levels in eps.items() for e in levels]
    rows = [done[a] for a in archs]
    gs = [Genotype.from_str(f"nb201:{r['arch']}") for r in rows]
    names = args.names
    origin = (
        f"The {len(rows)} cells of {args.archs_from.name} (`--archs-from`)"
        if args.archs_from is not None
        else f"{len(rows)} NB201 isomorph classes drawn uniformly (seed {args.seed})"
    )
    if args.exclude is not None:
        origin += f", none of them a class of {args.exclude.name} (`--exclude`)"
    given = " ".join(sys.argv[1:])
    sign = {n: INDICATORS.get(n).direction for n in names}
    label = {n: f"-{n}" if sign[n] < 0 else n for n in names}
    header = [label[n] for n in names] + ["params"]
    header += [f"{label[n]} within equal params" for n in names]
    lines = [
        "# Training-free indicators on NB201 (" + ", ".join(names) + ")",
        "",
        f"Command: `python experiments/indicators_nb201.py {given}`",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); this run's wall time "
        f"{seconds / 60:.1f} min (rows resumed from an earlier run cost nothing here).",
        "",
        f"{origin}; each network built at "
        f"C={args.C}, N={args.N} from one seeded initialisation (training-free, as in the dataset "
        f"paper), scored on one fixed class-balanced batch of {args.images} CIFAR-10 training images. "
        "Kendall tau of each indicator signed by its registered direction (`-x`: lower predicts "
        "more robust, so negated) against the "
        "dataset's accuracy; the parameter count beside them as the baseline to beat. 'Within "
        "equal params' pools the pairs of cells with the same parameter count (what a budgeted "
        "search compares; the count itself scores 0 there).",
        "",
        "| target | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    params = [r["params"] for r in rows]
    for t in targets:
        acc = np.array([bench.value(g, t) for g in gs])
        taus = []
        for key, direction in [*sign.items(), ("params", 1)]:
            values = direction * np.array([float(r[key]) for r in rows])
            taus.append(kendalltau(values, acc, nan_policy="omit").statistic)
        for key in names:
            values = sign[key] * np.array([float(r[key]) for r in rows])
            taus.append(kendall_within(values, acc, params)[0])
        lines.append(f"| {t} | " + " | ".join(f"{v:.3f}" for v in taus) + " |")
    lines += ["", *gain_lines(bench, gs, rows, names, sign, label)]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
