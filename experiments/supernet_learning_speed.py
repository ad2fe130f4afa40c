"""How much does weight sharing slow a darts supernet's learning?

Three runs of one recipe (default: the tiny preset's, the README main job's supernet training) on
the same training images, validated on the same held-out images (clean and PGD-`val_steps`):

- `standalone`: one random cell (`--seed`) built and trained alone;
- `fixed_path`: the supernet trained on that cell's path at every step, validated on that path;
- `sampled`: the supernet on sampled paths (the preset's sampler, as the main job trains),
  validated on `val_paths` random paths, BatchNorm recalibrated per path
  (robnas.training.validate).

`standalone` is the bar for the main job's goal: a supernet averaged over random paths is not
expected to beat one network trained alone on one path by the same recipe on the same images.
Resumable (each run's checkpoint under --work); the results are rewritten after every run.

    OMP_NUM_THREADS=1 python experiments/supernet_learning_speed.py \\
        [--images 12800] [--method clean] [--runs standalone,fixed_path,sampled]
        [--batch-size 128 --peak-lr 0.05] [--sampler uniform_op | --dense-start 0.3] [--epochs 2]
        [--augment none] [--eps-ramp 0.3] [--train-seed 1]

`--augment crop_flip|flip|none` sets the training augmentation (the preset's is none since
2026-12-05; results committed before then trained with crop_flip: add `--augment crop_flip` to
rerun them). `--train-seed S` redraws the training (weights, paths, batches, validated paths) on
the same split and cell, to measure the training noise.

`--dense-start F` trains the first F of the steps on denser paths: each (edge, op) bit is on with
probability falling linearly from 1 (the whole supernet) to 1/2 (uniform sampling), then 1/2, so
every weight learns from the start and the sub-paths are trained after (progressive shrinking,
after Once-for-All). BatchNorm is recalibrated on `--recal-images` (default 256) per path.

Each call writes `--out`.md and `--out`.csv (default: experiments/results/supernet_learning_speed/
runs/supernet_learning_speed). When `--out` lies in a `runs/` folder, the study's one table,
`variants.csv` beside that folder, is rebuilt from every run there: a row per run of each
variant, the settings its report records as columns (`--fold STUDY` rebuilds it alone).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from robnas import models
from robnas.config import TrainConfig, get_preset, with_overrides
from robnas.data import datasets
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models.samplers import (
    DenseStartSampler,
    PathSampler,
    UniformOpSampler,
    make_sampler,
)
from robnas.models.supernet import Supernet
from robnas.space.search_space import get_space
from robnas.training.loop import train
from robnas.training.validate import validate

HERE = Path(__file__).resolve().parent
RUNS = ("standalone", "fixed_path", "sampled")
AUGMENTS = ("crop_flip", "flip", "none")
STEM = "supernet_learning_speed"
# What a run's report says of its settings, in the wordings every version of write_results used
# ("first 0.3 of the pass clean" before "the first 0.3 pass(es) clean", "one pass" before
# "2 pass(es)"); a setting its report does not mention stays empty (not recorded).
SETTINGS: dict[str, tuple[str, type]] = {
    "method": (r"training \(([\w-]+),", str),
    "clean_passes": (r"first ([\d.]+) (?:of the pass|pass\(es\)) clean", float),
    "batch_size": (r"batch (\d+)", int),
    "peak_lr": (r"peak LR ([\d.e-]+)\)", float),
    "passes": (r"(one|\d+) pass(?:\(es\))? over", int),
    "sampler": (r"sampled paths: (\w+)", str),
    "dense_start": (r"over the first ([\d.]+) of the steps", float),
    "augment": (r"augmentation: (\w+)", str),
    "eps_ramp": (r"eps ramp over ([\d.]+) pass", float),
    "train_seed": (r"training seed (\d+)", int),
    "recal_images": (r"recalibrated on (\d+) images per path", int),
}
# Reports that say otherwise than the run trained: these six were rewritten after the preset
# gained its 0.3-pass eps ramp and print it, but trained with the full eps at once (their
# commands give no --eps-ramp while the preset had none; on the same training seed the
# `--eps-ramp 0.3` runs differ from them by 2-3 points of clean accuracy).
CORRECTIONS: dict[str, dict[str, Any]] = {
    f"{STEM}_b32_dense_lr0.1_{name}": {"eps_ramp": 0.0}
    for name in ("cropflip_t1", "flip", "flip_t1", "noaug", "noaug_t1", "noaug_t2")
}


class FixedPath(UniformOpSampler):
    """One path, every step."""

    def __init__(self, genotype: Genotype, seed: int) -> None:
        super().__init__(get_space(genotype.space), seed)
        self.genotype = genotype

    def sample(self) -> Genotype:
        return self.genotype


def flip_batch(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random horizontal flips only (`--augment flip`): crop_flip without the padded crop."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


@contextlib.contextmanager
def flips_only(on: bool) -> Iterator[None]:
    """While on, training batches are flipped, never cropped (batches() looks augment_batch up
    in its module); restored after."""
    saved = datasets.augment_batch
    if on:
        datasets.augment_batch = flip_batch
    try:
        yield
    finally:
        datasets.augment_batch = saved


def training_seed(args: argparse.Namespace) -> int:
    """`--seed` unless `--train-seed` redraws only the training (weights, paths, batches)."""
    return args.seed if args.train_seed is None else args.train_seed


def path_sampler(args: argparse.Namespace, cfg: TrainConfig, space: Any) -> PathSampler:
    seed = training_seed(args)
    if args.dense_start > 0:  # train() tells it the run's length
        return DenseStartSampler(space, seed, dense=args.dense_start)
    return make_sampler(args.sampler or cfg.sampler, space, seed)


def describe(sampler: PathSampler) -> str:
    if isinstance(sampler, DenseStartSampler):
        return f"{sampler.name} over the first {sampler.dense:g} of the steps"
    return sampler.name


def run_one(
    name: str,
    args: argparse.Namespace,
    cfg: TrainConfig,
    data: tuple[ImageData, ImageData],
    genotype: Genotype,
) -> dict[str, Any]:
    done = args.work / name / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    torch.manual_seed(training_seed(args))
    train_data, val_data = data
    if name == "standalone":
        model = models.build(space, genotype, macro, "cifar10")
        result = train(model, train_data, val_data, cfg, args.work / name, resume=True)
    else:
        model = Supernet(space, macro, "cifar10")
        sampler = (
            FixedPath(genotype, args.seed)
            if name == "fixed_path"
            else path_sampler(args, cfg, space)
        )
        result = train(
            model, train_data, val_data, cfg, args.work / name, sampler=sampler, resume=True
        )
    final = result.final
    if name == "fixed_path":  # its BatchNorm statistics are that path's own
        final = final | validate(model.extract(genotype), train_data, val_data, cfg)
    row = {
        "run": name,
        "images": len(train_data),
        "clean_acc": final["clean_acc"],
        "robust_acc": final["robust_acc"],
        "train_minutes": sum(r["seconds"] for r in result.history) / 60,
    }
    atomic_write_text(done, json.dumps(row, indent=2))
    return row


def recorded_settings(report: str) -> dict[str, Any]:
    """The settings a run's report (its .md) records; None for those it does not mention."""
    recipe = next((line for line in report.splitlines() if line.startswith("Recipe:")), "")
    found: dict[str, Any] = {}
    for name, (pattern, kind) in SETTINGS.items():
        match = re.search(pattern, recipe)
        if match is None:
            found[name] = None
        elif kind is int and match.group(1) == "one":
            found[name] = 1
        else:
            found[name] = kind(match.group(1))
    return found


def fold(runs: Path) -> pd.DataFrame:
    """Every run under `runs` (pairs <variant>.md + <variant>.csv) in one table: a row per run of
    each variant, sorted by variant, its recorded settings as columns beside the results
    (`corrected` names the settings CORRECTIONS set against the report)."""
    frames = []
    for table in sorted(runs.glob("*.csv")):
        report = table.with_suffix(".md")
        if not report.exists():
            raise FileNotFoundError(f"{table} has no report {report.name} to read settings from")
        rows = pd.read_csv(table)
        fixed = CORRECTIONS.get(table.stem, {})
        settings = recorded_settings(report.read_text()) | fixed
        frames.append(
            rows.assign(
                variant=table.stem,
                **{k: [v] * len(rows) for k, v in settings.items()},
                corrected=",".join(fixed),
            )
        )
    if not frames:
        raise FileNotFoundError(f"no run tables (*.csv) under {runs}")
    folded = pd.concat(frames, ignore_index=True)
    results = ["images", "clean_acc", "robust_acc", "train_minutes"]
    return folded[["variant", "run", *SETTINGS, *results, "corrected"]]


def write_fold(study: Path) -> Path:
    """Rebuild `study`/variants.csv from `study`/runs; returns its path."""
    out = study / "variants.csv"
    atomic_write_text(out, fold(study / "runs").to_csv(index=False))
    return out


def write_results(
    args: argparse.Namespace, rows: list[dict[str, Any]], genotype: Genotype, cfg: TrainConfig
) -> None:
    given = " ".join(sys.argv[1:])
    steps = f"PGD-{cfg.val_steps}"
    paths = describe(path_sampler(args, cfg, get_space("darts")))
    lines = [
        "# How much weight sharing slows a darts supernet's learning",
        "",
        f"Command: `python experiments/supernet_learning_speed.py {given}`",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s); other jobs may have shared the "
        "machine (minutes are wall time).",
        "",
        f"Recipe: the tiny preset's training ({cfg.method}, the first {cfg.clean_epochs:g} pass(es) "
        f"clean, batch {cfg.batch_size}, peak LR {cfg.peak_lr:g}), darts at C=8, 5 layers, "
        f"{cfg.epochs} pass(es) over the same {rows[0]['images'] if rows else '?'} training images; clean and {steps} "
        f"(8/255) accuracy on {cfg.val_size} held-out images, BatchNorm recalibrated on "
        f"{cfg.recal_batches * cfg.batch_size} images per path; sampled paths: {paths}; "
        f"augmentation: {args.augment or ('crop_flip' if cfg.augment else 'none')}; eps ramp over "
        f"{cfg.eps_ramp_epochs:g} pass(es) after the clean start; training seed "
        f"{training_seed(args)}. The cell: `{genotype.to_str()}`.",
        "",
        "| run | clean | " + steps + " | train min |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['clean_acc']:.3f} | {r['robust_acc']:.3f} | {r['train_minutes']:.1f} |"
        )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.parent / f"{out.name}.md", "\n".join(lines) + "\n")
    header = "run,images,clean_acc,robust_acc,train_minutes\n"
    body = "".join(
        f"{r['run']},{r['images']},{r['clean_acc']:.4f},{r['robust_acc']:.4f},{r['train_minutes']:.2f}\n"
        for r in rows
    )
    atomic_write_text(out.parent / f"{out.name}.csv", header + body)
    if out.parent.name == "runs":
        write_fold(out.parent.parent)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        "--data", type=Path, default=data, help="data folder (default: $ROBNAS_DATA)"
    )
    parser.add_argument(
        "--images", type=int, default=0, help="training images (0: the whole split)"
    )
    parser.add_argument("--method", default=None, help="override the preset's (e.g. clean)")
    parser.add_argument("--limit", type=int, default=0, help="read only this many images (tests)")
    parser.add_argument("--val", type=int, default=0, help="held-out images (0: the preset's)")
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--batch-size", type=int, default=0, help="0: the preset's (128)")
    parser.add_argument(
        "--peak-lr", type=float, default=0.0, help="peak LR at that batch (0: the preset's)"
    )
    parser.add_argument("--epochs", type=int, default=0, help="passes (0: the preset's, 1)")
    parser.add_argument(
        "--clean-epochs", type=float, default=None, help="clean start in passes (the preset's 0.3)"
    )
    parser.add_argument(
        "--eps-ramp",
        type=float,
        default=None,
        help="passes over which eps rises after the clean start",
    )
    parser.add_argument("--sampler", help="sampled run's path sampler (default: the preset's)")
    parser.add_argument(
        "--dense-start", type=float, default=0.0, help="fraction of steps on denser paths"
    )
    parser.add_argument(
        "--recal-images", type=int, default=256, help="BatchNorm recalibration images per path"
    )
    parser.add_argument("--seed", type=int, default=0, help="split, cell and training seed")
    parser.add_argument(
        "--train-seed", type=int, default=None, help="another training seed, same split and cell"
    )
    parser.add_argument(
        "--augment",
        choices=AUGMENTS,
        default=None,
        help="training augmentation (default: the preset's; crop_flip = pad-4 crop and h-flip)",
    )
    parser.add_argument("--work", type=Path, default=HERE / "runs" / STEM)
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / STEM / "runs" / STEM,
        help="writes OUT.md and OUT.csv (and refolds variants.csv when in a runs/ folder)",
    )
    parser.add_argument(
        "--fold",
        type=Path,
        metavar="STUDY",
        help="only rebuild STUDY/variants.csv from the runs in STUDY/runs, then exit",
    )
    args = parser.parse_args(argv)
    if args.fold is not None:
        try:
            print(f"wrote {write_fold(args.fold)}")
        except FileNotFoundError as err:
            parser.error(str(err))
        return 0
    if args.data is None:
        parser.error("set ROBNAS_DATA or pass --data (the folder holding CIFAR-10)")
    runs = [r for r in args.runs.split(",") if r]
    if not runs or set(runs) - set(RUNS):
        parser.error(f"--runs must name some of {', '.join(RUNS)}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = get_preset("tiny").train
    if args.method is not None:
        cfg = dataclasses.replace(cfg, method=args.method, clean_epochs=0.0)
    if args.batch_size or args.peak_lr:  # the peak LR is given at the batch used (no scaling)
        batch = args.batch_size or cfg.batch_size
        lr = args.peak_lr or cfg.peak_lr
        cfg = dataclasses.replace(cfg, batch_size=batch, lr=lr, lr_batch=batch)
    cfg = dataclasses.replace(cfg, recal_batches=max(1, args.recal_images // cfg.batch_size))
    cfg = with_overrides(  # None keeps the preset's
        cfg,
        epochs=args.epochs or None,
        clean_epochs=args.clean_epochs,
        eps_ramp_epochs=args.eps_ramp,
        augment=None if args.augment is None else args.augment != "none",
        seed=args.train_seed,
    )
    held = args.val or get_preset("tiny").val_images
    limit = args.limit or None
    full = load_dataset("cifar10", "train", data_dir=args.data, limit=limit, seed=args.seed)
    train_data, val_data = split_train_val(full, held, args.seed)
    if args.images:
        order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(1))
        train_data = train_data.take(order[: args.images])
    genotype = get_space("darts").sample(np.random.default_rng(args.seed))
    began = time.perf_counter()
    rows = []
    with flips_only(args.augment == "flip"):
        for name in runs:
            rows.append(run_one(name, args, cfg, (train_data, val_data), genotype))
            write_results(args, rows, genotype, cfg)
    print(f"{(time.perf_counter() - began) / 60:.1f} min this call", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
