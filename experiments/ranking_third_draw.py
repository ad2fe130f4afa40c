"""The declared rankers (`score`, `robust_score`, robnas/objectives/scores.py) on a third draw of NB201
isomorph classes, disjoint from the two draws they were chosen on.

Per cell, without ground truth: the deployed parameter count (C=16, N=5), the cell-path signals,
NASWOT at initialisation at the deployed size (128 class-balanced CIFAR-10 training images, seed
0: the development tables' setting), -jac_norm at C=16 N=1 (32 images, exact), and, for the first
`--lowfi` cells of the draw (a uniform sample: the draw is in random order), the low-fidelity
standalone protocol (robnas.evaluators.lowfi: trained normally at C=8 N=1, attacked at 1/255 on
held-out images). Each row is written atomically before the next cell starts, so an interrupted
run resumes. Only the summary reads the dataset's accuracies, after every signal is written.

    python experiments/ranking_third_draw.py --archs 500 --seed 3 --lowfi 150 \\
        --out experiments/results/ranking_third_draw

Writes OUT/ranking_third_draw.csv (`arch`, `params`, `score`, `robust_score`, every signal, then
the dataset's `clean`, `fgsm@1`, `pgd@1`), OUT/ranking_third_draw.md (agreement with 95% bootstrap
intervals) and OUT/RUN.md (command, machine, torch, threads, wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from robnas.data.datasets import load_dataset, split_train_val
from robnas.data.tabular import load_benchmark
from robnas.evaluators.base import seeded_build
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.objectives.scores import (
    ROBUST_SCORE_DEFINITION,
    SCORE_DEFINITION,
    path_features,
    robust_score,
    score,
)
from robnas.ranking.metrics import kendall, kendall_within
from robnas.ranking.report import TRUTHS, declared_agreement_lines, draw_disjoint_classes
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EARLIER = (
    RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201.csv",
    RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201_fresh500.csv",
)
LOWFI_COLUMNS = ("lowfi_clean", "lowfi_fgsm", "lowfi_pgd", "lowfi_clean_margin",
                 "lowfi_fgsm_margin", "lowfi_pgd_margin", "lowfi_seconds")  # fmt: skip


def draw_third(bench, count: int, seed: int, earlier: list[Path]) -> list[str]:
    """`count` classes drawn uniformly (seed), none of them a class of the earlier draws."""
    taken = [a for path in earlier for a in pd.read_csv(path)["arch"]]
    try:
        return draw_disjoint_classes(bench, get_space("nb201"), count, seed, taken)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def lowfi_evaluator(data_dir: Path, seed: int):
    """The low-fidelity protocol as a search would run it: 2,048 training images, 256 held-out
    scoring images (class-balanced, shuffled), one epoch at batch 128, PGD-3 and FGSM at 1/255."""
    from robnas.config import TrainConfig
    from robnas.evaluators.lowfi import LowFidelityEvaluator

    space = get_space("nb201")
    full = load_dataset("cifar10", "train", data_dir=data_dir, limit=2048 + 2000, seed=seed)
    train, held = split_train_val(full, 2000, seed=seed)
    score_data = held.subset(256, seed)
    order = torch.randperm(len(score_data), generator=torch.Generator().manual_seed(seed))
    cfg = TrainConfig(
        epochs=1, batch_size=128, lr=0.2, method="clean", augment=False, warmup_epochs=0.0,
        final_lr=0.0, weight_decay=5e-4, device="cpu",
    )  # fmt: skip
    return LowFidelityEvaluator(
        space,
        space.resolve_macro(C=8, N=1),
        train.subset(2048, seed),
        score_data.take(order),
        cfg,
        final_macro=space.resolve_macro("paper"),
        seed=seed,
    )


def write_rows(path: Path, archs: list[str], done: dict[str, dict]) -> None:
    table = pd.DataFrame([done[a] for a in archs if a in done])
    atomic_write_text(path, table.to_csv(index=False))  # every row durable before the next


def read_rows(path: Path) -> dict[str, dict]:
    return {r["arch"]: r for r in pd.read_csv(path).to_dict("records")} if path.exists() else {}


def signal_files(out: Path) -> list[Path]:
    """signals.csv and the shards' signals-<i>of<n>.csv (`--shard`)."""
    return sorted(out.glob("signals*.csv"))


def read_signals(out: Path) -> pd.DataFrame:
    """Every cell's signals from whichever file (an unsharded run or a shard) holds it."""
    tables = [pd.read_csv(path) for path in signal_files(out)]
    if not tables:
        raise SystemExit(f"error: no signals under {out}; run without --part summary first")
    return pd.concat(tables, ignore_index=True).drop_duplicates("arch")


def signals(args: argparse.Namespace, archs: list[str]) -> None:
    """The declared rankers' inputs and the cheap indicators, for every cell of the draw (with
    `--shard I/N` the cells whose position is I modulo N, into their own file, so N processes
    can share the draw; cells any file already holds are skipped)."""
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")  # C=16, N=5
    proxy = {**deployed, "N": 1}
    naswot_images = load_dataset("cifar10", "train", data_dir=args.data, limit=128, seed=0)
    jac_images = load_dataset("cifar10", "train", data_dir=args.data, limit=32, seed=0)
    index, count = args.shard
    path = args.out / ("signals.csv" if count == 1 else f"signals-{index}of{count}.csv")
    mine = [a for i, a in enumerate(archs) if i % count == index]
    elsewhere = {a for p in signal_files(args.out) if p != path for a in read_rows(p)}
    done = read_rows(path)
    for i, arch in enumerate(mine):
        if arch in done or arch in elsewhere:
            continue
        g = Genotype.from_str(f"nb201:{arch}")
        row: dict = {"arch": arch, "params": sizing.num_params(space, g, deployed, "cifar10")}
        row |= path_features(g.cells[0])
        model = seeded_build(space, g, deployed, "cifar10", 0).eval()
        x, y = naswot_images.floats(), naswot_images.labels
        row["naswot"] = INDICATORS.get("naswot")(model, x, y, cfg={"seed": 0})["naswot"]
        model = seeded_build(space, g, proxy, "cifar10", 0).eval()
        x, y = jac_images.floats(), jac_images.labels
        cfg = {"jac_method": "exact", "seed": 0}
        row["jac_norm"] = INDICATORS.get("jac_norm")(model, x, y, cfg=cfg)["jac_norm"]
        done[arch] = row
        write_rows(path, mine, done)
        print(f"[signals {i + 1}/{len(mine)}] {arch}", file=sys.stderr, flush=True)


def lowfi_pass(args: argparse.Namespace, archs: list[str]) -> None:
    """The low-fidelity protocol for the first `--lowfi` cells of the draw (sharded as
    `signals`)."""
    evaluator = lowfi_evaluator(args.data, 0)
    index, count = args.shard
    path = args.out / ("lowfi.csv" if count == 1 else f"lowfi-{index}of{count}.csv")
    mine = [a for i, a in enumerate(archs[: args.lowfi]) if i % count == index]
    elsewhere = {a for p in args.out.glob("lowfi*.csv") if p != path for a in read_rows(p)}
    done = read_rows(path)
    for i, arch in enumerate(mine):
        if arch in done or arch in elsewhere:
            continue
        result = evaluator.evaluate(Genotype.from_str(f"nb201:{arch}"))
        m = result.metrics
        done[arch] = {
            "arch": arch, "lowfi_clean": m["clean_acc"], "lowfi_fgsm": m["fgsm_acc"],
            "lowfi_pgd": m["pgd_acc"], "lowfi_clean_margin": m["clean_margin"],
            "lowfi_fgsm_margin": m["fgsm_margin"], "lowfi_pgd_margin": m["pgd_margin"],
            "lowfi_seconds": result.seconds,
        }  # fmt: skip
        write_rows(path, mine, done)
        print(
            f"[lowfi {i + 1}/{len(mine)}] {arch} {result.seconds:.1f}s", file=sys.stderr, flush=True
        )


def with_rankers(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["score"] = [
        score(p, n, q) for p, n, q in zip(table["params"], table["naswot"], table["paths_nopool"])
    ]
    table["robust_score"] = [
        robust_score(a, b) for a, b in zip(table["min_pool_per_path"], table["free_paths"])
    ]
    table["-jac_norm"] = -table["jac_norm"]
    return table


def summary(args: argparse.Namespace, archs: list[str]) -> None:
    bench = load_benchmark(args.data / "nb201-robustness")
    found = read_signals(args.out).set_index("arch")
    table = with_rankers(found.loc[[a for a in archs if a in found.index]].reset_index())
    lowfi_files = sorted(args.out.glob("lowfi*.csv"))
    if lowfi_files:
        found = pd.concat([pd.read_csv(p) for p in lowfi_files]).drop_duplicates("arch")
        found = found[found["arch"].isin(archs[: args.lowfi])]
        table = table.merge(found, on="arch", how="left")
    if len(table) < len(archs):
        raise SystemExit(
            f"error: {len(table)} of {len(archs)} cells scored; run without --summary-only"
        )
    gs = [Genotype.from_str(f"nb201:{a}") for a in table["arch"]]
    for t in TRUTHS:  # ground truth enters only here, after every signal was written
        table[t] = [bench.value(g, t) for g in gs]
    names = ["score", "robust_score", "naswot", "-jac_norm", "min_pool_per_path", "free_paths",
             "paths_nopool"]  # fmt: skip
    lines = [
        "# The declared rankers on a third NB201 draw",
        "",
        f"Command: `{command(args)}`",
        "",
        f"{len(table)} isomorph classes drawn uniformly (seed {args.seed}), none of them a class "
        "of oneshot_rank_nb201.csv or oneshot_rank_nb201_fresh500.csv (the draws the rankers were "
        "chosen on). The rankers were declared in robnas/objectives/scores.py before this run:",
        "",
        f"- {SCORE_DEFINITION}",
        f"- {ROBUST_SCORE_DEFINITION}",
        "",
        f"Intervals: {args.n_boot} bootstrap resamples of the cells (seed 0); the gain over #params "
        "is paired (both taus on the same resample). Within equal params the parameter count ties "
        "every pair, so its tau there is 0 by construction.",
        "",
        *declared_agreement_lines(table, names, args.n_boot),
    ]
    lowfi = table[table["lowfi_clean"].notna()] if "lowfi_clean" in table else table.iloc[:0]
    if len(lowfi):
        lines += [
            "",
            f"## Low-fidelity standalone training ({len(lowfi)} cells, the first of the draw)",
            "",
            "Trained normally at C=8 N=1 for one epoch over 2,048 images, scored on 256 held-out "
            "images. Kendall tau overall / within equal params (no intervals: exploratory, not a "
            f"declared ranker); median {lowfi['lowfi_seconds'].median():.1f} s per cell here.",
            "",
            "| signal | clean | fgsm@1 | pgd@1 |",
            "|---|---|---|---|",
        ]
        groups = lowfi["params"].tolist()
        for name in [*LOWFI_COLUMNS[:-1], "robust_score", "params"]:
            cells = []
            for truth in TRUTHS:
                w = kendall_within(lowfi[name], lowfi[truth], groups)[0]
                cells.append(f"{kendall(lowfi[name], lowfi[truth]):.3f} / {w:.3f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    atomic_write_text(args.out / "ranking_third_draw.md", "\n".join(lines) + "\n")
    columns = ["arch", "params", "score", "robust_score"]
    columns += [c for c in table.columns if c not in columns]
    atomic_write_text(
        args.out / "ranking_third_draw.csv", table[columns].to_csv(index=False, float_format="%.6g")
    )
    print("\n".join(lines))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command(args: argparse.Namespace) -> str:
    return "python experiments/ranking_third_draw.py " + " ".join(sys.argv[1:])


def log_run(args: argparse.Namespace, parts: list[str], seconds: float) -> None:
    """Append this invocation (command, machine, torch, threads, wall time) to OUT/runs.jsonl,
    from which RUN.md is written: a resumed or split run keeps every piece's record."""
    run = {
        "command": command(args),
        "parts": parts,
        "machine": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "nice": os.nice(0),
        "wall_minutes": round(seconds / 60, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with (args.out / "runs.jsonl").open("a") as f:
        f.write(json.dumps(run) + "\n")


def shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes I/N, e.g. 0/2, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument("--data", type=Path, default=Path(data) if data else None)
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=3, help="the draw's seed")
    parser.add_argument(
        "--lowfi", type=int, default=0, help="cells given the low-fidelity protocol"
    )
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument(
        "--shard", type=shard, default=(0, 1), metavar="I/N", help="signals of every N-th cell"
    )
    parser.add_argument(
        "--part",
        choices=("signals", "lowfi", "summary"),
        action="append",
        help="run only these parts (repeatable; default all three): two processes can compute "
        "the signals and the low-fidelity protocol side by side",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ranking_third_draw")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error(
            "set ROBNAS_DATA or pass --data (the folder with cifar10/ and nb201-robustness/)"
        )
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    args.out.mkdir(parents=True, exist_ok=True)
    bench = load_benchmark(args.data / "nb201-robustness")
    archs = draw_third(bench, args.archs, args.seed, list(EARLIER))
    del bench  # the signals never see the dataset's accuracies
    parts = args.part or ["signals", "lowfi", "summary"]
    start = time.perf_counter()
    if "signals" in parts:
        signals(args, archs)
    if "lowfi" in parts and args.lowfi:
        lowfi_pass(args, archs)
    if "summary" in parts:
        summary(args, archs)
    if "summary" not in parts or len(parts) > 1:
        log_run(args, parts, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
