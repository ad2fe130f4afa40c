"""The main job's supernet learning curve: the supernet `robnas search --space darts --budget 5M
--preset tiny` trains, trained by the same settings, with its held-out accuracy measured at
points inside its single pass.

The search's own log (`supernet/log.csv`) has one row per epoch, and the tiny preset trains one
pass, so it holds one point. This script resolves the search's settings exactly as the command
does (`resolve_settings`), builds and seeds the supernet as the search does, and trains it with
the library's loop; a progress callback records every reported step's training loss and, at
`--points` places in the pass, runs the loop's own validation (`validate`: two fixed paths,
BatchNorm recalibrated per path, clean and PGD-10 accuracy on the held-out images). Validation
draws from its own generators and restores the supernet's buffers and modes, so the weights
train as they would without it (the last point is the loop's own end-of-pass validation).

Writes `curve.csv` (kind "step": step, fraction of the pass, training loss; kind "val": clean and
PGD-10 accuracy) and `curve.json` (settings, machine, CPU and wall seconds). Resumable: the loop
checkpoints inside the pass into `--work`, and the rows already in `curve.csv` are kept.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/main_job_curve.py \
        --out experiments/results/main_job_curve --work runs/main_job_curve

Plot it with `python experiments/plot_docs.py`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from robnas.config import get_preset
from robnas.data.datasets import load_train_val
from robnas.evaluators.base import seeded
from robnas.models.samplers import make_sampler
from robnas.models.supernet import Supernet
from robnas.search.pipeline import resolve_settings
from robnas.search.request import SearchRequest
from robnas.search.settings import SupernetSettings
from robnas.space.search_space import get_space
from robnas.specs import Budget, DataSpec
from robnas.training.loop import Progress, train, validate

COLUMNS = ("kind", "step", "fraction", "train_loss", "clean_acc", "robust_acc")


def main_job_settings(data_dir: str | None, seed: int = 0) -> SupernetSettings:
    """The settings `robnas search --space darts --budget 5M --preset tiny` resolves to."""
    request = SearchRequest(
        space="darts",
        preset=get_preset("tiny"),
        budget=Budget.parse("5M"),
        data=DataSpec(data_dir=data_dir),
        seed=seed,
    )
    settings = resolve_settings(request)
    assert isinstance(settings, SupernetSettings)
    return settings


def validation_steps(steps: int, points: int, every: int) -> list[int]:
    """`points` step counts spread over a pass of `steps` steps at which to validate, each one
    the progress callback reports (1, every + 1, 2 * every + 1, ...); the pass's end is left to
    the loop's own validation."""
    reported = list(range(1, steps, every))
    if points < 1 or not reported:
        return []
    chosen = {min(reported, key=lambda s: abs(s - steps * k / points)) for k in range(points)}
    return sorted(s for s in chosen if s < steps)


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomic: the rows sorted by (step, kind), through a temporary file."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in sorted(rows, key=lambda r: (int(r["step"]), r["kind"])):
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
    tmp.replace(path)


def recorder(
    rows: list[dict[str, Any]],
    steps: int,
    at: list[int],
    run_validation: Callable[[], dict[str, float]],
    save: Callable[[], None],
) -> Callable[[Progress], None]:
    """The progress callback: a "step" row per report, a "val" row at the steps in `at` and at
    the end of the pass (from the loop's log row). Rows already present are not recomputed."""
    have = {(r["kind"], int(r["step"])) for r in rows}

    def callback(p: Progress) -> None:
        if p.kind == "step" and ("step", p.step) not in have:
            rows.append(
                {"kind": "step", "step": p.step, "fraction": p.step / steps, "train_loss": p.loss}
            )
            have.add(("step", p.step))
        if p.kind == "step" and p.step in at and ("val", p.step) not in have:
            rows.append({"kind": "val", "step": p.step, "fraction": p.step / steps})
            rows[-1].update(run_validation())
            have.add(("val", p.step))
            save()
        if p.kind == "epoch_end" and p.row is not None and ("val", steps) not in have:
            rows.append(
                {
                    "kind": "val",
                    "step": steps,
                    "fraction": 1.0,
                    "clean_acc": p.row.get("clean_acc"),
                    "robust_acc": p.row.get("robust_acc"),
                }
            )
            have.add(("val", steps))
            save()

    return callback


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument("--data", type=Path, default=Path(data) if data else None)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/main_job_curve"))
    parser.add_argument("--work", type=Path, default=Path("runs/main_job_curve"))
    parser.add_argument("--points", type=int, default=10, help="validations inside the pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-size", type=int, default=None, help="fewer training images (a quick check)"
    )
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("set ROBNAS_DATA or pass --data (the folder with cifar10/)")
    settings = main_job_settings(str(args.data), args.seed)
    data_spec = settings.data
    if args.train_size is not None:
        data_spec = DataSpec(
            data_spec.dataset, data_spec.data_dir, args.train_size, data_spec.val_size
        )
    cfg = settings.train
    space = get_space(settings.space)
    macro = dict(settings.search_macro)
    train_data, val_data = load_train_val(data_spec, settings.seed)
    steps = len(train_data) // cfg.batch_size
    model = seeded(settings.seed, lambda: Supernet(space, macro, settings.dataset))
    sampler = make_sampler(cfg.sampler, space, settings.seed, macro=macro)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "curve.csv"
    rows: list[dict[str, Any]] = list(read_rows(path))
    at = validation_steps(steps, args.points, 10)
    callback = recorder(
        rows,
        steps,
        at,
        lambda: validate(model, train_data, val_data, cfg),
        lambda: write_rows(path, rows),
    )
    wall, cpu = time.perf_counter(), time.process_time()
    train(
        model,
        train_data,
        val_data,
        cfg,
        args.work,
        sampler=sampler,
        resume=True,
        progress=callback,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    write_rows(path, rows)
    record = {
        "command": "python experiments/main_job_curve.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "train_images": len(train_data),
        "val_images": min(cfg.val_size, len(val_data)),
        "steps": steps,
        "validated_at": at + [steps],
        "train": dataclasses.asdict(cfg),
        "macro": macro,
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "wall_s_this_run": round(wall, 1),
        "cpu_s_this_run": round(cpu, 1),
    }
    tmp = args.out / "curve.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(args.out / "curve.json")
    final = [r for r in rows if r["kind"] == "val" and int(r["step"]) == steps]
    print(f"wrote {path}: {len(rows)} rows; end of pass {final[0] if final else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
