"""One-shot ranking on NB201 with levers: does an NB201 supernet rank cells as the robustness
dataset does (Jung, Lukasik and Keuper, ICLR 2023), beside counting parameters?

Base: a supernet (C=8, N=1 by default) trained normally (`method="clean"`, SGD peak 0.05 warmed up
over 10% then cosine, batch 128, batch augmentation, uniform op sampling) on the CIFAR-10 training
split minus `--held` held-out images; then `--archs` isomorph classes drawn uniformly (or, with
`--cells CSV`, the cells another result drew) are scored
with inherited weights (BatchNorm recalibrated per cell on 4 x 256 training images) on `--images`
held-out images (robnas.ranking.run.rank_supernet). Each lever changes one thing and is scored on
the first `--lever-archs` cells of the same draw (the base restricted to those cells is its row).

Resumable: every supernet (train_<run>/last.pt) and every per-cell table (<lever>/cells.csv) is
kept under --work; rerunning the same command skips what is done. After every lever the results
(--out .csv/.md) are rewritten from what is done; text after the conclusions marker is kept.

    OMP_NUM_THREADS=1 nice -n 10 \
        python experiments/oneshot_rank_nb201.py [--epochs 8] [--archs 500] [--lever-archs 150]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.data.tabular import TabularBenchmark, load_benchmark
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models.samplers import PathSampler, UniformOpSampler, make_sampler
from robnas.models.supernet import Supernet
from robnas.ranking.report import TRUTHS, agreement_table, draw_classes, split_agreement
from robnas.ranking.run import RankSettings, load_supernet, rank_supernet, ranking_images
from robnas.training.loop import train

HERE = Path(__file__).resolve().parent
MARKER = "<!-- conclusions: text below this line is kept when the script rewrites the file -->"
SCORERS = ("supernet_clean", "supernet_fgsm", "supernet_logp", "params", "score")
RAW = ("arch", "params", "flops", "supernet_clean", "supernet_fgsm", "clean_half_a", "clean_half_b")
# the levers measure the supernet: `score` here is params then the supernet, as when these
# results were first committed (robnas rank's default adds NASWOT; combine_nb201.py pairs them)
SUPERNET_ONLY: dict[str, Any] = {"indicators": (), "score": "params+supernet"}
SPLIT_EDGE = 3  # few-shot: the edge input -> output node (|x~0| of the last node)


@dataclass(frozen=True)
class Lever:
    name: str
    what: str
    run: str  # the supernet it scores (train_<run>/)
    recal_batches: int = 4
    images: float = 1.0  # times --images
    fgsm: bool = True
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig/macro/sampler overrides
    key: str = "supernet_clean"  # the supernet score its row reports (and `score` combines)


def levers(epochs: int, images: int) -> list[Lever]:
    """In priority order; the base first."""
    return [
        Lever("base", f"base: {epochs} epochs, uniform op, clean", "base"),
        Lever(
            "half_epochs",
            f"{epochs // 2} epochs (own schedule)",
            "half",
            train={"epochs": epochs // 2},
        ),
        Lever(
            "double_epochs",
            f"{2 * epochs} epochs (own schedule)",
            "double",
            train={"epochs": 2 * epochs},
        ),
        Lever(
            "long_epochs",
            f"{4 * epochs} epochs (own schedule)",
            "long",
            train={"epochs": 4 * epochs},
        ),
        Lever("recal_1x256", "BN recalibrated on 1 x 256", "base", recal_batches=1, fgsm=False),
        Lever("recal_8x256", "BN recalibrated on 8 x 256", "base", recal_batches=8, fgsm=False),
        Lever(
            "split_half", f"scored on {images // 2} held-out images", "base", images=0.5, fgsm=False
        ),
        Lever(
            "split_double", f"scored on {2 * images} held-out images", "base", images=2, fgsm=False
        ),
        Lever(
            "logp",
            "scored by the mean clean log-probability of the true class, not accuracy",
            "base",
            fgsm=False,
            key="supernet_logp",
        ),
        Lever("fair_op", "strictly fair op sampling", "fair_op", train={"sampler": "fair_op"}),
        Lever(
            "fair_op_double",
            f"strictly fair op sampling, {2 * epochs} epochs",
            "fair_op_double",
            train={"sampler": "fair_op", "epochs": 2 * epochs},
        ),
        Lever(
            "uniform_class",
            "isomorph classes uniformly",
            "uniform_class",
            train={"sampler": "uniform_class"},
        ),
        Lever(
            "fgsm_rs",
            f"FGSM-RS 2/255, {epochs // 2} epochs (first 30% clean): vs half_epochs",
            "fgsm_rs",
            train={"method": "fgsm-rs", "epochs": epochs // 2},
        ),  # fmt: skip
        Lever("fewshot", f"few-shot: 5 sub-supernets on edge {SPLIT_EDGE}, 1 epoch each", "base"),
        Lever("width_c16", "C=16", "c16", train={"C": 16}),
    ]


def train_config(args: argparse.Namespace, over: dict[str, Any]) -> TrainConfig:
    epochs = int(over.get("epochs", args.epochs))
    kw: dict[str, Any] = dict(
        epochs=epochs, method=over.get("method", "clean"), batch_size=128, lr=args.lr,
        weight_decay=5e-4, warmup_epochs=0.1 * epochs, warmup_start=0.01, final_lr=0.0,
        val_every=epochs, val_size=min(200, args.held), val_steps=5, val_paths=1,
        recal_batches=2, device="cpu", seed=args.seed,
    )  # fmt: skip
    if kw["method"] == "fgsm-rs":  # small eps; clean first where the loop supports it
        kw |= {"eps": 2 / 255, "alpha": 2.5 / 255}
        if "clean_epochs" in {f.name for f in dataclasses.fields(TrainConfig)}:
            kw["clean_epochs"] = 0.3 * epochs
    return TrainConfig(**kw)


class FixedEdgeSampler(UniformOpSampler):
    """Uniform op sampling with one edge held at one choice (a few-shot sub-supernet's paths)."""

    name = "fixed_edge"

    def __init__(self, space: Any, seed: int, edge: int, choice: int) -> None:
        super().__init__(space, seed)
        self.edge, self.choice = edge, choice

    def sample(self) -> Genotype:
        edges = super().sample().edges(0)
        edges[self.edge] = self.space.edge_choices[self.choice]
        return Genotype(self.space.name, (self.space.cell_from_edges(edges),))


def trained(
    folder: Path, cfg: TrainConfig, macro: dict[str, Any], sampler: PathSampler | None,
    data: tuple[ImageData, ImageData], init: Path | None = None,
) -> Path:  # fmt: skip
    """train_<run>/last.pt, trained now unless it already holds all `cfg.epochs` epochs."""
    last = folder / "last.pt"
    if last.exists() and torch.load(last, weights_only=True)["epoch"] >= cfg.epochs:
        return last
    torch.manual_seed(cfg.seed)
    model = Supernet("nb201", macro)
    if init is not None and not last.exists():
        model.load_state_dict(load_supernet(init)[0].state_dict())
    sampler = sampler or UniformOpSampler(model.space, cfg.seed, macro=model.macro)
    train(model, data[0], data[1], cfg, folder, sampler=sampler, resume=True)
    return last


def score(
    args: argparse.Namespace, lever: Lever, ckpt_path: Path, out: Path, full: ImageData,
    bench: TabularBenchmark, archs: list[str],
) -> dict[str, Any]:  # fmt: skip
    supernet, ckpt = load_supernet(ckpt_path)
    recal, heldout = ranking_images(
        ckpt, full, str(ckpt_path), images=round(lever.images * args.images),
        recal_images=lever.recal_batches * args.score_batch, seed=args.seed,
    )  # fmt: skip
    settings = RankSettings(
        archs=len(archs), recal_batches=lever.recal_batches, batch_size=args.score_batch,
        fgsm_eps=1 / 255 if lever.fgsm and not args.no_fgsm else 0.0, seed=args.seed,
        **SUPERNET_ONLY,
    )  # fmt: skip
    return rank_supernet(
        supernet, bench, recal=recal, heldout=heldout, out_dir=out, settings=settings, archs=archs
    )


def fewshot(args, lever, base_ckpt, folder, data, full, bench, archs) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """K sub-supernets (one per choice on SPLIT_EDGE), each from the base, trained 1 epoch with
    that edge fixed; a cell is scored by the one matching its op on that edge."""
    from robnas.ranking.run import summarize
    from robnas.space.search_space import get_space

    space = get_space("nb201")
    cfg = dataclasses.replace(
        train_config(args, {"epochs": 1}), warmup_epochs=0.0, lr=args.lr / 5, val_size=64
    )
    macro = {"C": args.C, "N": args.N}
    parts = []
    for k, choice in enumerate(space.edge_choices):
        group = [a for a in archs if Genotype.from_str(f"nb201:{a}").edges(0)[SPLIT_EDGE] == choice]
        if not group:
            continue
        sub = folder / f"train_op{k}"
        sampler = FixedEdgeSampler(space, args.seed + k, SPLIT_EDGE, k)
        ckpt = trained(sub, cfg, macro, sampler, data, init=base_ckpt)
        score(args, lever, ckpt, folder / f"op{k}", full, bench, group)
        parts.append(pd.read_csv(folder / f"op{k}" / "cells.csv")[list(RAW)])
    table = pd.concat(parts).set_index("arch").loc[archs].reset_index()
    settings = RankSettings(archs=len(archs), seed=args.seed, **SUPERNET_ONLY)
    return summarize(table, bench, "nb201", folder, settings)


def run_lever(args, lever: Lever, data, full, bench, archs) -> None:  # type: ignore[no-untyped-def]
    folder = args.work / lever.name
    if (folder / "ranking.json").exists() and (folder / "timing.json").exists():
        return
    began = time.perf_counter()
    over = lever.train
    macro = {"C": int(over.get("C", args.C)), "N": int(over.get("N", args.N))}
    cfg = train_config(args, over)
    run_dir = args.work / f"train_{lever.run}"
    space_sampler = None
    if "sampler" in over:
        from robnas.space.search_space import get_space

        space_sampler = make_sampler(over["sampler"], get_space("nb201"), args.seed, macro=macro)
    ckpt = trained(run_dir, cfg, macro, space_sampler, data)
    cells = archs if lever.name == "base" else archs[: args.lever_archs]
    if lever.name == "fewshot":
        fewshot(args, lever, ckpt, folder, data, full, bench, cells)
    else:
        score(args, lever, ckpt, folder, full, bench, cells)
    hist = torch.load(ckpt, weights_only=True)["history"]
    if lever.name == "fewshot":  # its own training: the sub-supernets
        subs = sorted(folder.glob("train_op*/last.pt"))
        hist = [r for p in subs for r in torch.load(p, weights_only=True)["history"]]
    timing = {
        "train_seconds": sum(r["seconds"] for r in hist),
        "epochs": len(hist),
        "final_val": {k: hist[-1].get(k) for k in ("clean_acc", "robust_acc", "train_loss")},
        "this_call_seconds": time.perf_counter() - began,
    }
    atomic_write_text(folder / "timing.json", json.dumps(timing, indent=2))


def load_data(args: argparse.Namespace) -> tuple[tuple[ImageData, ImageData], ImageData]:
    limit = args.train_images + args.held if args.train_images else None
    full = load_dataset("cifar10", "train", data_dir=args.data, limit=limit, seed=args.seed)
    return split_train_val(full, args.held, args.seed), full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        "--data",
        type=Path,
        default=data,
        required=not data,
        help="data folder (default: $ROBNAS_DATA)",
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--lever-archs", type=int, default=150)
    parser.add_argument(
        "--cells",
        type=Path,
        help="score the first --archs cells of this CSV's arch column instead of a fresh draw "
        "(to replicate a ranker on the cells another result drew)",
    )
    parser.add_argument("--images", type=int, default=1000, help="held-out scoring images")
    parser.add_argument("--held", type=int, default=2000, help="held-out images (never trained)")
    parser.add_argument("--train-images", type=int, default=0, help="0: the whole split")
    parser.add_argument("--score-batch", type=int, default=256)
    parser.add_argument(
        "--no-fgsm", action="store_true", help="skip the supernet FGSM column (halves scoring)"
    )
    parser.add_argument("--levers", default="all", help="comma list of lever names, or all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true", help="rewrite the results only")
    parser.add_argument("--work", type=Path, default=HERE / "runs" / "oneshot_rank_nb201")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "oneshot_rank_nb201" / "oneshot_rank_nb201"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    chosen = levers(args.epochs, args.images)
    if args.levers != "all":
        names = args.levers.split(",")
        chosen = [lv for lv in chosen if lv.name in names]
    bench = load_benchmark(args.data / "nb201-robustness")
    archs = given_cells(args) or draw_classes(bench.rows, bench.strings, args.archs, args.seed)
    data, full = load_data(args)
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--report-only"]
    command = "python experiments/oneshot_rank_nb201.py " + " ".join(given)
    clock = args.work / "clock.json"  # wall time from the first call to the last lever done
    args.work.mkdir(parents=True, exist_ok=True)
    if not clock.exists():
        atomic_write_text(clock, json.dumps({"first_start": time.time()}))
    for lever in chosen:
        if not args.report_only:
            print(f"lever {lever.name} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
            run_lever(args, lever, data, full, bench, archs)
            stamps = json.loads(clock.read_text()) | {"last_end": time.time()}
            atomic_write_text(clock, json.dumps(stamps))
        # every lever done so far, whichever this call ran (--levers picks what runs, not what
        # is reported)
        write_results(args, levers(args.epochs, args.images), command, bench)
    return 0


def given_cells(args: argparse.Namespace) -> list[str]:
    """--cells: the first --archs of that CSV's arch column (none: draw)."""
    if args.cells is None:
        return []
    archs = pd.read_csv(args.cells)["arch"].tolist()
    if len(archs) < args.archs:
        raise SystemExit(f"--cells {args.cells} has {len(archs)} cells; --archs asks {args.archs}")
    return archs[: args.archs]


def _cells(args: argparse.Namespace, name: str) -> pd.DataFrame | None:
    path = args.work / name / "cells.csv"
    done = (args.work / name / "timing.json").exists()
    return pd.read_csv(path) if done and path.exists() else None


def lever_row(
    name: str, what: str, table: pd.DataFrame, timing: dict[str, Any], key: str = "supernet_clean"
) -> str:
    """One row; `key` is the supernet score in the supernet and `score` columns (supernet_clean,
    or supernet_logp: then `score` combines its within-group rank, and the halves are logp's)."""
    halves = ("clean_half_a", "clean_half_b")
    if key == "supernet_logp":
        from scipy.stats import rankdata

        from robnas.ranking.report import combined_score

        table = table.assign(supernet_clean=table[key])
        ranks = rankdata(table[key]) / (len(table) + 1)
        table["score"] = combined_score(table["params"].to_numpy(), ranks)
        halves = ("logp_half_a", "logp_half_b")
    scorers = [s for s in SCORERS if s in table and table[s].notna().all()]
    agree = agreement_table(table, scorers, TRUTHS)
    get = {(r.score, r.truth): r for r in agree.itertuples()}
    retest = split_agreement(
        table[halves[0]].to_numpy(), table[halves[1]].to_numpy(), table["params"].to_numpy()
    )

    def tw(s: str, t: str) -> str:
        r = get.get((s, t))
        return "-" if r is None else f"{r.kendall:.3f} / {r.kendall_within:.3f}"

    mins = timing.get("train_seconds", float("nan")) / 60
    return (
        f"| {name} | {what} | {len(table)} | {mins:.1f} | {retest['kendall']:.3f} / "
        f"{retest['kendall_within']:.3f} | {tw('supernet_clean', 'clean')} | "
        f"{tw('supernet_clean', 'fgsm@1')} | {tw('supernet_clean', 'pgd@1')} | "
        f"{tw('supernet_fgsm', 'fgsm@1')} | {tw('supernet_logp', 'clean')} | "
        f"{tw('score', 'clean')} | {tw('params', 'clean')} | "
        f"{get[('score', 'clean')].top10:.2f} | {get[('params', 'clean')].top10:.2f} |"
    )


def _partial_base(args: argparse.Namespace, bench: TabularBenchmark) -> pd.DataFrame | None:
    """--report-only while the base is still scoring: the cells done so far (a prefix of the
    uniform draw, so itself a uniform draw), summarized into base_partial/."""
    from robnas.ranking.run import summarize

    path = args.work / "base" / "cells.csv"
    if not args.report_only or not path.exists():
        return None
    raw = pd.read_csv(path)[list(RAW)]
    settings = RankSettings(archs=len(raw), seed=args.seed, **SUPERNET_ONLY)
    summarize(raw, bench, "nb201", args.work / "base_partial", settings)
    return pd.read_csv(args.work / "base_partial" / "cells.csv")


def write_results(
    args: argparse.Namespace, chosen: list[Lever], command: str, bench: TabularBenchmark
) -> None:
    base, base_dir = _cells(args, "base"), args.work / "base"
    if base is None:
        base, base_dir = _partial_base(args, bench), args.work / "base_partial"
    if base is None:
        return
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = base.rename(
        columns={"clean": "true_clean", "fgsm@1": "true_fgsm@1", "pgd@1": "true_pgd@1"}
    )
    csv = csv.rename(columns={"supernet_clean": "clean", "supernet_fgsm": "fgsm@1"})
    cols = [
        "arch",
        "clean",
        "fgsm@1",
        "params",
        "score",
        "flops",
        "true_clean",
        "true_fgsm@1",
        "true_pgd@1",
    ]
    atomic_write_text(out.with_suffix(".csv"), csv[cols].to_csv(index=False))
    subset = set(base["arch"].iloc[: args.lever_archs])
    head = (
        "| lever | what | cells | train min | test-retest tau / within | supernet vs clean "
        "| vs fgsm@1 | vs pgd@1 | supernet FGSM vs fgsm@1 | supernet logp vs clean "
        "| score vs clean | #params vs clean "
        "| score top-10% | #params top-10% |"
    )
    rows = [head, "|" + "---|" * 14]
    timings = {}
    for lv in chosen:
        t = args.work / lv.name / "timing.json"
        timings[lv.name] = json.loads(t.read_text()) if t.exists() else {}
        last = args.work / f"train_{lv.run}" / "last.pt"
        if "train_seconds" not in timings[lv.name] and last.exists():
            hist = torch.load(last, weights_only=True)["history"]
            timings[lv.name]["train_seconds"] = sum(r["seconds"] for r in hist)
    stamps = json.loads((args.work / "clock.json").read_text())
    end = time.time() if base_dir.name == "base_partial" else stamps.get("last_end", time.time())
    wall = (end - stamps["first_start"]) / 60
    rows.append(lever_row("base (all)", chosen[0].what, base, timings["base"]))
    rows.append(lever_row("base (lever cells)", "the same supernet on the levers' cells",
                          base[base["arch"].isin(subset)], timings["base"]))  # fmt: skip
    skipped = []
    for lv in chosen[1:]:
        table = _cells(args, lv.name)
        if table is None:
            skipped.append(lv.name)
            continue
        rows.append(lever_row(lv.name, lv.what, table, timings[lv.name], lv.key))
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "?"
    )
    text = [
        "# One-shot ranking on NB201: supernet levers against counting parameters",
        "",
        f"Command: `OMP_NUM_THREADS=1 {command}` (levers may run in "
        "parallel processes with `--levers a,b`; they share the folders)",
        f"Machine: {model} ({platform.machine()}), {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread per process; other jobs shared the machine (see the "
        f"conclusions for how each part ran). Wall time from the first call to the last lever "
        f"done: {wall:.0f} min (training minutes per lever in the table).",
        "",
        "Each cell: `tau / within` = Kendall tau over all cells / pooled within equal parameter "
        "counts (what a budgeted search compares; #params is 0 there by construction). `score` = "
        "params first, supernet clean accuracy within equal params (report.combined_score). "
        "`supernet` = its clean accuracy (the logp lever: mean log-probability of the true "
        "class). Test-retest: that supernet score on two disjoint halves of the scoring split.",
        "",
        *rows,
        "",
        f"Not run (yet): {', '.join(skipped) if skipped else 'none'}.",
        "",
        "## Base, every score against every truth",
        "",
        f"{len(base)} of {args.archs} cells"
        + (f" (the arch column of {args.cells.name})" if args.cells else "")
        + (
            " (partial: scoring was still running when this was written)"
            if base_dir.name == "base_partial"
            else ""
        )
        + ".",
        "",
        (base_dir / "ranking.md").read_text(),
    ]
    for lv in chosen[1:]:
        md = args.work / lv.name / "ranking.md"
        if lv.name not in skipped and md.exists():
            text += [f"## {lv.name}: {lv.what}", "", md.read_text()]
    old = out.with_suffix(".md")
    kept = old.read_text().partition(MARKER)[2] if old.exists() else "\n"
    atomic_write_text(old, "\n".join(text) + "\n" + MARKER + kept)


if __name__ == "__main__":
    sys.exit(main())
