"""Data-parallel training under torchrun (DDP; gloo on a CPU, NCCL on GPUs).

Every rank sees the same shuffled, augmented global batch (one data generator, same seed) and
trains its strided shard `batch[rank::world]`. Supernet ranks run the same sampled path in a step:
the sampler state is broadcast from rank 0 once, then every rank draws the same sequence. Attack
noise comes from a generator seeded per (step, shard), so a shard's adversarial examples do not
depend on how many processes share the batch: two processes equal one process accumulating the
same two shards (`chunks=2`), which tests/test_ddp.py checks.

Unused parameters: a supernet step only touches its path's ops, so DDP must be told
(`find_unused_parameters=True`); since every rank runs the same path, the unused set is the same
everywhere and the averaged gradients are exact (a rank-dependent path would average real
gradients with missing ones). Standalone networks use every parameter: the flag stays off.
Buckets: DDP's default 25 MB; a tiny net fits one bucket (one all-reduce per step).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Ranks:
    """This process's place among `world` data-parallel processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the only one that writes checkpoints, logs and progress."""
        return self.rank == 0

    def shard(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self.world == 1:
            return images, labels
        return images[self.rank :: self.world], labels[self.rank :: self.world]

    def sum(self, values: Tensor) -> Tensor:
        """All-reduce (sum) over ranks; identity in one process."""
        if self.world > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's `flag` on every rank (a collective: every rank must call it)."""
        if self.world == 1:
            return flag
        mine = 1.0 if flag and self.main else 0.0  # only rank 0's counts
        return bool(self.sum(torch.tensor([mine], device=device)).item())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def join(device: torch.device) -> Ranks:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # A process group left to the interpreter's exit can abort its backend's threads
        # ("terminate called without an active exception": a non-zero exit after a finished run).
        atexit.register(_leave)
    return Ranks(dist.get_rank(), dist.get_world_size())


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, device: torch.device, *, unused_parameters: bool) -> nn.Module:
    """DDP around the training objective (one forward per backward)."""
    return nn.parallel.DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=unused_parameters,
    )


def shard_generators(
    seed: int, step: int, shards: list[int], device: torch.device
) -> list[torch.Generator]:
    """One attack generator per data shard, seeded by (seed, global step, shard index)."""
    gens = []
    for shard in shards:
        state = np.random.SeedSequence([seed, step, shard]).generate_state(1)[0]
        gens.append(torch.Generator(device=device).manual_seed(int(state)))
    return gens
