"""Throughput of the scoring protocols a budgeted NB201 search can use: cells scored per minute
of wall time and per CPU-minute, at one thread and at two, on the same cells.

Protocols: `declared` (what `score` and `robust_score` need: the cell-path signals, free, and
NASWOT at initialisation at the deployed size on 128 images) and `lowfi` (the low-fidelity
standalone protocol of experiments/ranking_third_draw.py). The cells are the first `--cells` of
the third draw. The machine's load average is printed beside each row: on a shared machine the
numbers are upper bounds on the time a quiet machine needs.

    python experiments/lowfi_throughput.py --cells 6 --threads 1 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import torch

from robnas.data.datasets import load_dataset
from robnas.data.tabular import load_benchmark
from robnas.evaluators.base import seeded_build
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.objectives.scores import path_features
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent


def _third_draw_module():
    spec = importlib.util.spec_from_file_location(
        "ranking_third_draw", HERE / "ranking_third_draw.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ranking_third_draw"] = module
    spec.loader.exec_module(module)
    return module


def declared(archs: list[str], data: Path) -> None:
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")
    images = load_dataset("cifar10", "train", data_dir=data, limit=128, seed=0)
    x, y = images.floats(), images.labels
    for arch in archs:
        g = Genotype.from_str(f"nb201:{arch}")
        path_features(g.cells[0])
        model = seeded_build(space, g, deployed, "cifar10", 0).eval()
        INDICATORS.get("naswot")(model, x, y, cfg={"seed": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument("--data", type=Path, default=Path(data) if data else None)
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--protocols", nargs="+", default=["declared", "lowfi"])
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("set ROBNAS_DATA or pass --data")
    third = _third_draw_module()
    bench = load_benchmark(args.data / "nb201-robustness")
    archs = third.draw_third(bench, 500, 3, list(third.EARLIER))[: args.cells]
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for protocol in args.protocols:
            # a new evaluator each time: its memory of scored cells would answer the repeats
            evaluator = third.lowfi_evaluator(args.data, 0) if protocol == "lowfi" else None
            wall, cpu = time.perf_counter(), time.process_time()
            if evaluator is not None:
                for arch in archs:
                    evaluator.evaluate(Genotype.from_str(f"nb201:{arch}"))
            else:
                declared(archs, args.data)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            row = {
                "protocol": protocol,
                "threads": threads,
                "cells": len(archs),
                "wall_s_per_cell": round(wall / len(archs), 2),
                "cells_per_wall_minute": round(60 * len(archs) / wall, 2),
                "cells_per_cpu_minute": round(60 * len(archs) / cpu, 2),
                "load_average": os.getloadavg()[0],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
