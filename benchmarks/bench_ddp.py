"""Data-parallel step time on the CPU: 2 processes (gloo) over 1 process, same global batch.

Each process runs `--threads` torch threads (default 1, as torchrun sets OMP_NUM_THREADS=1).
A step is one supernet training step (sampled path, `--method`, global batch `--batch`); the
median over `--steps` timed steps after `--warmup` is reported. On a 2-core machine two processes
cannot be faster than one process using both cores; the point is correctness that carries to
GPUs. The last line is one JSON object.

    python benchmarks/bench_ddp.py [--space nb201] [--C 8] [--batch 64] [--method fgsm-rs]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robnas.config import TrainConfig
from robnas.models.supernet import Supernet, UniformOpSampler
from robnas.training.distributed import Ranks, shard_generators, wrap
from robnas.training.steps import AdversarialStep, TrainObjective, make_optimizer


def step_times(args: argparse.Namespace, ranks: Ranks) -> list[float]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    macro = {"C": args.C, "N": 1} if args.space == "nb201" else {"C": args.C, "layers": 5}
    supernet = Supernet(args.space, macro)
    sampler = UniformOpSampler(supernet.space, 0)
    cfg = TrainConfig(method=args.method, steps=args.attack_steps, batch_size=args.batch)
    step = AdversarialStep(cfg, make_optimizer(supernet, cfg), None)
    net: torch.nn.Module = TrainObjective(supernet, cfg.method, cfg.beta)
    if ranks.world > 1:
        net = wrap(net, torch.device("cpu"), unused_parameters=True)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, 32, 32, generator=gen)
    labels = torch.randint(0, 10, (args.batch,), generator=gen)
    x, y = ranks.shard(images, labels)
    times = []
    for i in range(args.warmup + args.steps):
        supernet.set_path(sampler.sample())
        gens = shard_generators(0, i, [ranks.rank], torch.device("cpu"))
        ranks.barrier()
        began = time.perf_counter()
        step(net, x, y, gens, attack_model=supernet)
        ranks.barrier()
        if i >= args.warmup:
            times.append(time.perf_counter() - began)
    return times


def _worker(rank: int, args: argparse.Namespace, init: str, out: str) -> None:
    os.environ.update(WORLD_SIZE="2", RANK=str(rank))
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        times = step_times(args, Ranks(rank, 2))
        if rank == 0:
            torch.save(times, out)
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--method", default="fgsm-rs")
    parser.add_argument("--attack-steps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    one = step_times(args, Ranks())
    with tempfile.TemporaryDirectory() as tmp:
        init, out = f"file://{Path(tmp) / 'rdv'}", str(Path(tmp) / "times.pt")
        mp.start_processes(_worker, args=(args, init, out), nprocs=2, start_method="spawn")
        two = torch.load(out)
    t1, t2 = statistics.median(one), statistics.median(two)
    print(f"{args.space} C={args.C} supernet, {args.method}, global batch {args.batch}")
    print(f"1 process: {t1 * 1e3:.0f} ms/step; 2 processes (gloo): {t2 * 1e3:.0f} ms/step")
    print(
        json.dumps(
            {
                "one_process_ms": round(t1 * 1e3, 1),
                "two_process_ms": round(t2 * 1e3, 1),
                "two_over_one": round(t2 / t1, 3),
                "space": args.space,
                "C": args.C,
                "batch": args.batch,
                "method": args.method,
                "threads_per_process": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
