"""The main job's candidate protocol before and after the speed levers, side by side in one run.

Each cell is scored twice by `SupernetEvaluator` (inherit, FGSM-RS finetune on 500 images,
BatchNorm recalibration, PGD-20 on 250 held-out images, FSP distance and Jacobian norm on 64):
- before: every scored image attacked and checked (the protocol as it was);
- after: the library as it is (only the images classified right clean are attacked).
The two runs alternate cell by cell (before, after, before, after, ...) so other processes slow
both alike. Printed per cell: CPU and wall seconds of both, and both metric sets (they must
agree up to float rounding). The last line is one JSON object.

    python benchmarks/bench_candidate.py [--supernet CKPT] [--cells 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_levers import robust_accuracy_all  # noqa: E402
from bench_search import Bench, _supernet_evaluator, cpu_info, load_or_warm  # noqa: E402

import robnas.evaluators.base as evaluator_base  # noqa: E402
from robnas.config import get_preset  # noqa: E402
from robnas.data.datasets import load_dataset, split_train_val  # noqa: E402
from robnas.models.samplers import UniformOpSampler  # noqa: E402
from robnas.models.supernet import Supernet  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402


@contextlib.contextmanager
def as_before() -> Iterator[None]:
    """The protocol as it was: every scored image attacked."""

    def attack_all(
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        attack: Any,
        *,
        batch_size: int,
        generator: torch.Generator,
    ) -> tuple[float, float]:
        return robust_accuracy_all(model, images, labels, batch_size, attack, generator)

    saved = evaluator_base.robust_accuracy
    evaluator_base.robust_accuracy = attack_all  # type: ignore[assignment]
    try:
        yield
    finally:
        evaluator_base.robust_accuracy = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", metavar="CKPT", help="a trained tiny darts supernet")
    parser.add_argument("--warm-steps", type=int, default=300)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_name, _ = cpu_info()
    print(f"cpu: {model_name}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    preset = get_preset("tiny")
    space = get_space("darts")
    data = load_dataset("cifar10", "train", data_dir=args.data_dir)
    train_data, val_data = split_train_val(data, preset.val_images, args.seed)
    supernet = Supernet(space, space.resolve_macro("tiny"))
    load_or_warm(supernet, args.supernet, train_data, preset.train, args.warm_steps, args.seed)
    bench = Bench(
        space,
        preset,
        supernet,
        train_data.subset(preset.candidates.finetune_images or 500, args.seed),
        val_data.subset(preset.candidates.score_images or 250, args.seed),
        space.resolve_macro("paper"),
        args.seed,
    )
    paths = UniformOpSampler(space, args.seed + 2)
    rows = []
    for _ in range(args.cells):
        g = paths.sample()
        row: dict[str, Any] = {"genotype": g.to_str()}
        for name in ("before", "after"):
            with as_before() if name == "before" else contextlib.nullcontext():
                evaluator = _supernet_evaluator(bench, finetune=True)  # fresh: no cache hit
                w, c = time.perf_counter(), time.process_time()
                result = evaluator.evaluate(g)
                row[name] = {
                    "cpu_s": time.process_time() - c,
                    "wall_s": time.perf_counter() - w,
                    "clean_acc": result.metrics["clean_acc"],
                    "pgd20_acc": result.metrics["pgd20_acc"],
                    "fsp_dist": result.metrics["fsp_dist"],
                    "jac_norm": result.metrics["jac_norm"],
                }
        b, a = row["before"], row["after"]
        print(
            f"cell: before {b['cpu_s']:.1f} s CPU ({b['wall_s']:.1f} wall), after "
            f"{a['cpu_s']:.1f} s CPU ({a['wall_s']:.1f} wall): {b['cpu_s'] / a['cpu_s']:.2f}x; "
            f"clean {b['clean_acc']:.3f}/{a['clean_acc']:.3f}, "
            f"pgd20 {b['pgd20_acc']:.3f}/{a['pgd20_acc']:.3f}, "
            f"fsp {b['fsp_dist']:.4g}/{a['fsp_dist']:.4g}, jac {b['jac_norm']:.4g}/{a['jac_norm']:.4g}"
        )
        rows.append(row)
    ratio = statistics.median(r["before"]["cpu_s"] / r["after"]["cpu_s"] for r in rows)
    before = statistics.median(r["before"]["cpu_s"] for r in rows)
    after = statistics.median(r["after"]["cpu_s"] for r in rows)
    print(f"median per cell: before {before:.1f} s CPU, after {after:.1f} s CPU, {ratio:.2f}x")
    print(
        json.dumps(
            {
                "cpu": model_name,
                "threads": torch.get_num_threads(),
                "load": round(os.getloadavg()[0], 2),
                "before_cpu_s": round(before, 2),
                "after_cpu_s": round(after, 2),
                "ratio": round(ratio, 3),
                "cells": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
