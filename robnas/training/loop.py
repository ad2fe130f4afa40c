"""Training of networks and supernets: resume, epochs, validation, checkpoints.

`train(model, train_data, val_data, cfg, out_dir)` runs PGD-AT / TRADES / FGSM-RS / clean. For a
`Supernet` each step trains a new path drawn from the sampler. Every epoch ends with robust
validation (PGD on a fixed held-out subset), an atomic `last.pt` (model, optimiser, scheduler,
sampler and data-RNG states), `best.pt` when robust accuracy improves, and `log.csv`. Resuming
from `last.pt` reproduces the uninterrupted run (attack noise is seeded per step, so it needs no
saved state). Devices go through `robnas.device` (bf16, channels_last, compile); under torchrun
(WORLD_SIZE > 1) the loop is data-parallel, see `robnas.training.distributed`. The library draws
nothing: progress goes to an optional callback (the CLI draws the bar).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.checkpoint import load_checkpoint, load_state, save_checkpoint, split_record
from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, batches
from robnas.device import DevicePolicy, device_policy, resolve_device
from robnas.errors import CheckpointError, ConfigError
from robnas.models.samplers import PathSampler, make_sampler
from robnas.models.supernet import Supernet
from robnas.training.distributed import Ranks, join, shard_generators, wrap
from robnas.training.finetune import finetune
from robnas.training.steps import (
    AdversarialStep,
    StepStats,
    TrainObjective,
    make_optimizer,
    make_scheduler,
)
from robnas.training.validate import evaluate_robust, validate

__all__ = [
    "Progress",
    "TrainConfig",
    "TrainResult",
    "evaluate_robust",
    "finetune",
    "load_checkpoint",
    "resolve_device",
    "train",
    "validate",
]

log = logging.getLogger(__name__)

CSV_COLUMNS = ("epoch", "lr", "train_loss", "train_adv_acc", "clean_acc", "robust_acc", "seconds")
PROGRESS_EVERY = 10  # steps between progress reports (each reads the loss: one host sync)


@dataclass(frozen=True)
class Progress:
    """One report to the progress callback: `kind` is "epoch_start", "step" or "epoch_end"
    (`row` then holds the epoch's log row)."""

    kind: str
    epoch: int  # 1-based
    epochs: int
    step: int
    steps: int
    loss: float | None = None
    row: dict[str, float] | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass
class TrainResult:
    epochs: int
    history: list[dict[str, float]]
    best: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


@dataclass
class _State:
    """What a checkpoint carries between epochs besides the weights."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    sampler: PathSampler | None
    data_gen: torch.Generator
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    epoch: int = 0


def _identity(model: nn.Module, spec: Any) -> dict[str, Any]:
    """What a checkpoint says it holds: arch label, space, macro, dataset, kind."""
    if isinstance(model, Supernet):
        return {
            "arch": f"supernet:{model.space.name}",
            "space": model.space.name,
            "macro": dict(model.macro),
            "dataset": model.dataset,
            "kind": "supernet",
        }
    if spec is not None:
        space = spec.space.name if spec.space is not None else None
        return {
            "arch": spec.label,
            "space": space,
            "macro": dict(spec.macro),
            "dataset": spec.dataset,
            "kind": "network",
        }
    genotype = getattr(model, "genotype", None)
    label = genotype.to_str() if genotype is not None else type(model).__name__.lower()
    return {
        "arch": label,
        "space": getattr(model, "space_name", None),
        "macro": {},
        "dataset": "cifar10",
        "kind": "network",
    }


def _write_csv(path: Path, history: list[dict[str, float]]) -> None:
    from robnas.io import atomic_write_text

    rows = [",".join(CSV_COLUMNS)]
    rows += [",".join(f"{row.get(c, float('nan')):.6g}" for c in CSV_COLUMNS) for row in history]
    atomic_write_text(path, "\n".join(rows) + "\n")


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in ("device", "val_every")}


def _changed_settings(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """Settings of `cfg` that differ from the checkpoint's. A setting the checkpoint predates
    counts as its default (the run trained that way); one no longer known is ignored."""
    defaults = TrainConfig().to_dict()
    return sorted(
        k for k, v in _comparable(cfg.to_dict()).items() if saved.get(k, defaults[k]) != v
    )


def _resume(model: nn.Module, state: _State, last: Path, arch: str, cfg: TrainConfig) -> None:
    """Load weights and trainer state from `last`; refuse a run written with other settings."""
    ckpt = load_checkpoint(last, arch)
    saved = dict(ckpt.get("config", {}))
    if "sampler" not in saved and ckpt.get("sampler"):  # written before the config named it
        saved["sampler"] = ckpt["sampler"]["name"]
    diff = _changed_settings(saved, cfg)
    if diff:
        raise CheckpointError(
            f"{last} was written with other settings ({', '.join(diff)}); "
            "rerun with the same settings or a new --out"
        )
    load_state(model, ckpt["model"], str(last))
    try:
        state.optimizer.load_state_dict(ckpt["optimizer"])
        state.scheduler.load_state_dict(ckpt["scheduler"])
        state.data_gen.set_state(ckpt["rng"]["data"])
        if state.sampler is not None:
            state.sampler.load_state_dict(ckpt["sampler"])
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"{last} has unusable trainer state ({err}); start a new --out"
        ) from None
    state.history, state.best = ckpt["history"], ckpt.get("best", {})
    state.epoch = int(ckpt["epoch"])
    log.info("resuming %s at epoch %d", last, state.epoch)


def _save(
    out: Path,
    model: nn.Module,
    state: _State,
    identity: dict[str, Any],
    cfg: TrainConfig,
    improved: bool,
) -> None:
    """best.pt (when improved), last.pt (with trainer state) and log.csv, each atomic."""
    payload = {
        **identity,
        "model": model.state_dict(),
        "config": cfg.to_dict(),
        "epoch": state.epoch,
        "metrics": state.history[-1],
        "best": state.best,
        "history": state.history,
    }
    if improved:
        save_checkpoint(out / "best.pt", payload)
    trainer = {
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "sampler": state.sampler.state_dict() if state.sampler is not None else None,
        "rng": {"data": state.data_gen.get_state()},
    }
    save_checkpoint(out / "last.pt", {**payload, **trainer})
    _write_csv(out / "log.csv", state.history)


def _epoch(
    model: nn.Module,
    net: nn.Module,
    step: AdversarialStep,
    state: _State,
    data: ImageData,
    cfg: TrainConfig,
    ranks: Ranks,
    policy: DevicePolicy,
    chunks: int,
    report: Callable[[int, torch.Tensor], None],
) -> dict[str, float]:
    """One pass over the training data; returns the summed training statistics over ranks."""
    device = policy.device
    drop_last = len(data) >= cfg.batch_size
    steps = max(1, len(data) // cfg.batch_size if drop_last else 1)
    stats = StepStats.zeros(device)
    feed = batches(
        data,
        cfg.batch_size,
        shuffle=True,
        generator=state.data_gen,
        augment=cfg.augment,
        device=device,
        drop_last=drop_last,
    )
    # shard k of this rank's chunks is global shard rank + world * k (see distributed.py)
    shards = [ranks.rank + ranks.world * k for k in range(chunks)]
    for i, (images, labels) in enumerate(feed):
        images, labels = ranks.shard(images, labels)
        images = policy.inputs(images)
        if state.sampler is not None and isinstance(model, Supernet):
            model.set_path(state.sampler.sample())
        at = state.epoch * steps + i  # optimiser steps so far, over epochs and resumes
        gens = shard_generators(cfg.seed, at, shards, device)
        scale = cfg.eps_scale(at, steps)
        loss, logits = step(
            net, images, labels, gens, attack_model=model, chunks=chunks, eps_scale=scale
        )
        stats.add(loss, logits, labels)
        report(i, loss)
    seen = torch.tensor(float(stats.seen), dtype=torch.float64, device=device)
    total = ranks.sum(torch.stack([stats.loss.double(), stats.adv_correct.double(), seen]))
    n = max(1.0, float(total[2]))
    return {"train_loss": float(total[0]) / n, "train_adv_acc": float(total[1]) / n}


def train(
    model: nn.Module,
    train_data: ImageData,
    val_data: ImageData,
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    sampler: PathSampler | None = None,
    resume: bool = False,
    progress: ProgressCallback | bool | None = None,
    spec: Any = None,
    policy: DevicePolicy | None = None,
    chunks: int = 1,
) -> TrainResult:
    """Train `model` (a network or a Supernet); see the module docstring. `progress`: a callback
    given `Progress` reports on rank 0 (a bool is accepted and ignored: epochs are logged).
    `chunks` > 1 accumulates gradients over that many sub-batches per process and step."""
    policy = policy or device_policy(cfg.device)
    ranks = join(policy.device)
    if cfg.batch_size % (ranks.world * chunks):
        raise ConfigError(
            f"batch_size {cfg.batch_size} must divide by {ranks.world} processes x {chunks} chunks"
        )
    out = Path(out_dir) if out_dir is not None else None
    last = out / "last.pt" if out is not None else None
    if last is not None and last.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose a new --out"
        )
    if isinstance(model, Supernet) and sampler is None:
        sampler = make_sampler(cfg.sampler, model.space, cfg.seed, macro=model.macro)
    policy.prepare(model)
    drop_last = len(train_data) >= cfg.batch_size
    steps = max(1, len(train_data) // cfg.batch_size if drop_last else 1)
    if sampler is not None:
        sampler.start(cfg.epochs * steps)
    optimizer = make_optimizer(model, cfg)
    state = _State(
        optimizer,
        make_scheduler(optimizer, cfg, steps),
        sampler,
        torch.Generator().manual_seed(cfg.seed),
    )
    step = AdversarialStep(cfg, optimizer, state.scheduler, policy=policy)
    identity = _identity(model, spec)
    # which images the weights train on, so a search reusing them can score on others
    identity["split"] = split_record(train_data, val_data, dataset=identity["dataset"])
    if last is not None and resume and last.exists():
        _resume(model, state, last, identity["arch"], cfg)
    if sampler is not None:  # every rank draws the same paths from rank 0's sampler state
        sampler.load_state_dict(ranks.broadcast(sampler.state_dict()))
    objective: nn.Module = TrainObjective(model, cfg.method, cfg.beta)
    if ranks.world > 1:
        objective = wrap(objective, policy.device, unused_parameters=isinstance(model, Supernet))
    callback = progress if callable(progress) and ranks.main else None
    free = bool(sampler is not None and sampler.free)
    for epoch in range(state.epoch, cfg.epochs):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]

        def report(i: int, loss: torch.Tensor, epoch: int = epoch) -> None:
            if callback is not None and (i % PROGRESS_EVERY == 0 or i + 1 == steps):
                callback(Progress("step", epoch + 1, cfg.epochs, i + 1, steps, float(loss)))

        if callback is not None:
            callback(Progress("epoch_start", epoch + 1, cfg.epochs, 0, steps))
        row: dict[str, float] = {"epoch": epoch + 1, "lr": lr}
        row |= _epoch(model, objective, step, state, train_data, cfg, ranks, policy, chunks, report)
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            row.update(validate(model, train_data, val_data, cfg, free=free, ranks=ranks))
        row["seconds"] = time.perf_counter() - began
        state.history.append(row)
        state.epoch = epoch + 1
        improved = "robust_acc" in row and row["robust_acc"] > state.best.get("robust_acc", -1.0)
        if improved:
            keys = ("epoch", "clean_acc", "robust_acc")
            state.best = {k: row[k] for k in keys}
        if ranks.main:
            log.info("epoch %d: %s", epoch + 1, _fmt(row))
            if out is not None:
                _save(out, model, state, identity, cfg, improved)
        if callback is not None:
            callback(Progress("epoch_end", epoch + 1, cfg.epochs, steps, steps, row=row))
    return TrainResult(cfg.epochs, state.history, state.best, out)


def _fmt(row: dict[str, float]) -> dict[str, str]:
    keys = ("train_loss", "train_adv_acc", "clean_acc", "robust_acc")
    return {k: f"{row[k]:.3f}" for k in keys if k in row}
