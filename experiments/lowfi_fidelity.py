"""Which fidelity of the low-fidelity protocol ranks NB201 cells, measured on development cells only.

The cells: `--cells` NB201 isomorph classes drawn uniformly (seed `--seed`) from the two
development draws (experiments/results/oneshot_rank_nb201/oneshot_rank_nb201.csv and
oneshot_rank_nb201_fresh500.csv) among those that fit `--budget` parameters at the deployed size
(C=16, N=5): the cells a budgeted search compares. Each named fidelity
(`robnas.evaluators.lowfi.FIDELITIES`) trains every cell normally and scores it on held-out
images at eps 1/255; one row per cell is written atomically before the next starts, so a run
resumes, and `--shard I/N` lets N processes share the cells (each into its own file).

Only `--part summary` reads the development tables' ground truth (`true_clean`, `true_fgsm@1`,
`true_pgd@1`), after every row is written: Kendall tau overall and within equal parameter counts
of each low-fidelity metric, beside #params, and the cells scored per CPU-minute.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/lowfi_fidelity.py --fidelity 3epoch-4k \\
        --shard 0/2 --part run --out experiments/results/lowfi_fidelity
    python experiments/lowfi_fidelity.py --part summary --out experiments/results/lowfi_fidelity
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from robnas.evaluators.lowfi import FIDELITIES, make_lowfi_evaluator
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.ranking.metrics import kendall, kendall_within
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent
DEV = HERE / "results" / "oneshot_rank_nb201"
DRAWS = (DEV / "oneshot_rank_nb201.csv", DEV / "oneshot_rank_nb201_fresh500.csv")
TRUTHS = ("clean", "fgsm@1", "pgd@1")
METRICS = ("clean_acc", "fgsm_acc", "pgd_acc", "clean_margin", "fgsm_margin", "pgd_margin")


def development_cells(count: int, budget: int, seed: int) -> pd.DataFrame:
    """`count` in-budget classes of the development draws (arch, deployed params), drawn
    uniformly; the ground truth columns stay in the files until the summary."""
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")
    seen: dict[str, tuple[str, int]] = {}
    for path in DRAWS:
        for arch in pd.read_csv(path, usecols=["arch"])["arch"]:
            g = Genotype.from_str(f"nb201:{arch}")
            seen.setdefault(
                space.canonical(g), (arch, sizing.num_params(space, g, deployed, "cifar10"))
            )
    rows = sorted(v for v in seen.values() if v[1] <= budget)
    if len(rows) < count:
        raise SystemExit(f"error: only {len(rows)} in-budget development cells, asked {count}")
    pick = np.random.default_rng(seed).choice(len(rows), size=count, replace=False)
    return pd.DataFrame([rows[i] for i in pick], columns=["arch", "params"])


def _rows_path(out: Path, fidelity: str, shard: tuple[int, int]) -> Path:
    index, count = shard
    suffix = "" if count == 1 else f"-{index}of{count}"
    return out / f"rows-{fidelity}{suffix}.csv"


def _read(paths: list[Path]) -> pd.DataFrame:
    tables = [pd.read_csv(p) for p in paths if p.exists()]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["arch"])


def run(args: argparse.Namespace) -> None:
    cells = development_cells(args.cells, args.budget, args.seed)
    space = get_space("nb201")
    evaluator = make_lowfi_evaluator(
        args.fidelity, space, final_macro=space.resolve_macro("paper"), data_dir=args.data
    )
    path = _rows_path(args.out, args.fidelity, args.shard)
    others = [p for p in args.out.glob(f"rows-{args.fidelity}*.csv") if p != path]
    elsewhere = set(_read(others)["arch"])
    done = _read([path]).to_dict("records")
    have = {r["arch"] for r in done}
    index, count = args.shard
    mine = [r for i, r in enumerate(cells.to_dict("records")) if i % count == index]
    for i, cell in enumerate(mine):
        if cell["arch"] in have or cell["arch"] in elsewhere:
            continue
        cpu = time.process_time()
        result = evaluator.evaluate(Genotype.from_str(f"nb201:{cell['arch']}"))
        row = {"arch": cell["arch"], "params": cell["params"]}
        row |= {k: result.metrics[k] for k in METRICS}
        row |= {"wall_s": result.seconds, "cpu_s": time.process_time() - cpu}
        done.append(row)
        atomic_write_text(path, pd.DataFrame(done).to_csv(index=False))
        print(
            f"[{args.fidelity} {i + 1}/{len(mine)}] {cell['arch']} "
            f"clean {row['clean_acc']:.3f} {row['wall_s']:.1f}s wall {row['cpu_s']:.1f}s cpu",
            file=sys.stderr,
            flush=True,
        )


def truth_table() -> pd.DataFrame:
    tables = [pd.read_csv(p) for p in DRAWS]
    table = pd.concat(tables, ignore_index=True).drop_duplicates("arch").set_index("arch")
    return table[[f"true_{t}" for t in TRUTHS]].rename(columns=lambda c: c[len("true_") :])


def agreement(rows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Kendall tau overall and within equal params of every metric (and #params) per truth."""
    table = rows.join(truth, on="arch")
    groups = table["params"].tolist()
    out = []
    for t in TRUTHS:
        out.append(
            {
                "signal": "#params",
                "truth": t,
                "tau": kendall(table["params"], table[t]),
                "tau_within": float("nan"),
            }
        )
        for m in METRICS:
            within, _pairs = kendall_within(table[m], table[t], groups)
            out.append(
                {
                    "signal": m,
                    "truth": t,
                    "tau": kendall(table[m], table[t]),
                    "tau_within": within,
                }
            )
    return pd.DataFrame(out)


def summary(args: argparse.Namespace) -> None:
    truth = truth_table()  # ground truth enters here, after the rows were written
    lines = [
        "# Low-fidelity protocol: which fidelity ranks NB201 cells (development cells)",
        "",
        f"Cells: {args.cells} in-budget classes (at most {args.budget:,} parameters at C=16 N=5) "
        f"drawn uniformly (seed {args.seed}) from the two development draws. Kendall tau of each "
        "low-fidelity metric against the dataset, overall and within equal parameter counts "
        "(pooled over the groups; #params ties every pair there). Accuracies count an image as "
        "robust only if it is right clean too; margins are the true logit minus the best other.",
        "",
    ]
    found = []
    for name in FIDELITIES:
        rows = _read(sorted(args.out.glob(f"rows-{name}*.csv"))).drop_duplicates("arch")
        if rows.empty:
            continue
        agree = agreement(rows, truth)
        agree.insert(0, "fidelity", name)
        found.append(agree)
        f = FIDELITIES[name]
        pairs = kendall_within(rows["clean_acc"], rows["clean_acc"], rows["params"].tolist())[1]
        lines += [
            f"## `{name}`: C={f.C} N={f.N}, {f.train_images:,} training images x {f.epochs} "
            f"epoch(s) at batch {f.batch_size}, {f.score_images} scoring images",
            "",
            f"{len(rows)} cells, {rows['params'].nunique()} parameter counts, {pairs} pairs of "
            f"equal size. Mean clean accuracy after training {rows['clean_acc'].mean():.3f}. "
            f"CPU seconds per cell: median {rows['cpu_s'].median():.1f} "
            f"({60 / rows['cpu_s'].median():.1f} cells per CPU-minute); wall seconds per cell "
            f"median {rows['wall_s'].median():.1f} on the shared machine.",
            "",
            "| signal | tau vs clean (overall / within) | vs fgsm@1 | vs pgd@1 |",
            "|---|---|---|---|",
        ]
        for signal in ["#params", *METRICS]:
            cells = []
            for t in TRUTHS:
                r = agree[(agree["signal"] == signal) & (agree["truth"] == t)].iloc[0]
                within = "-" if np.isnan(r["tau_within"]) else f"{r['tau_within']:.3f}"
                cells.append(f"{r['tau']:.3f} / {within}")
            lines.append(f"| {signal} | {' | '.join(cells)} |")
        lines.append("")
    if not found:
        raise SystemExit(f"error: no rows under {args.out}; run --part run first")
    atomic_write_text(
        args.out / "lowfi_fidelity.csv", pd.concat(found).to_csv(index=False, float_format="%.4f")
    )
    atomic_write_text(args.out / "lowfi_fidelity.md", "\n".join(lines))
    print("\n".join(lines))


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise argparse.ArgumentTypeError(f"--shard takes I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("run", "summary"), default="run")
    parser.add_argument("--fidelity", choices=sorted(FIDELITIES), default="3epoch-4k")
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--budget", type=int, default=600_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard", type=_shard, default=(0, 1))
    parser.add_argument("--data", type=Path, default=os.environ.get("ROBNAS_DATA"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.part == "run":
        if args.data is None:
            raise SystemExit("error: set ROBNAS_DATA or pass --data")
        run(args)
    else:
        summary(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
