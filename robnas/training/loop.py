"""Training of networks and supernets: resume, epochs, validation, checkpoints.

`train(model, train_data, val_data, cfg, out_dir)` runs PGD-AT / TRADES / FGSM-RS / clean. For a
`Supernet` each step trains a new path drawn from the sampler. Every epoch ends with robust
validation (PGD on a fixed held-out subset), an atomic `last.pt` (model, optimiser, scheduler,
sampler and RNG states), `best.pt` when robust accuracy improves, and `log.csv`.

Inside an epoch `last.pt` is also rewritten every `checkpoint_every` seconds of wall time (after
the step that crosses the interval), adding where the epoch stands: the step within it, its data
order, its partial training statistics. A single-pass run (the tiny preset's supernet) killed
late in its pass so loses minutes, not the pass. Resuming from `last.pt`, at an epoch's end or
inside one, reproduces the uninterrupted run bit for bit on a CPU: the data generator (epoch
order, augmentation), the sampler, optimiser, LR schedule and torch's global RNG (dropout) are
restored, and attack noise is seeded per (step, shard), so it needs no saved state.

Devices go through `robnas.device` (bf16, channels_last, compile); under torchrun (WORLD_SIZE > 1)
the loop is data-parallel, see `robnas.training.distributed`. The library draws nothing: progress
goes to an optional callback (the CLI draws the bar).
"""

from __future__ import annotations

import logging
import math
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
from robnas.io import atomic_write_text
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
#: Seconds of wall time between checkpoints inside an epoch. A kill loses at most this much
#: training (plus the step under way): 2 of the 7-14 minutes of the tiny preset's single
#: supernet pass on 2 CPU cores, where one checkpoint (1.6 MB at 16,000 training images) takes
#: 0.08 s to write, 0.07% of the interval (docs/resume.md). Much shorter intervals cost more
#: for bigger models and slower disks and save little.
CHECKPOINT_EVERY = 120.0


@dataclass(frozen=True)
class Progress:
    """One report to the progress callback: `kind` is "epoch_start", "step" or "epoch_end"
    (`row` then holds the epoch's log row). `step` counts the epoch's steps done: an epoch
    resumed inside starts at the checkpoint's step."""

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
class _Pass:
    """Where the running epoch stands: what a checkpoint inside an epoch adds."""

    order: torch.Tensor  # the epoch's data order (drawn from the data generator at its start)
    lr: float  # the learning rate at its start (its log row's)
    stats: StepStats
    step: int = 0  # optimiser steps done in it
    seconds: float = 0.0  # wall time it took before the last resume


@dataclass
class _State:
    """What a checkpoint carries besides the weights."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    sampler: PathSampler | None
    data_gen: torch.Generator
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    epoch: int = 0  # epochs completed
    current: _Pass | None = None  # the epoch under way, when resumed inside one


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


def _resume(
    model: nn.Module,
    state: _State,
    last: Path,
    arch: str,
    cfg: TrainConfig,
    *,
    samples: int,
    main: bool,
    device: torch.device,
) -> None:
    """Load weights and trainer state from `last`; refuse a run written with other settings.
    `samples`: the training images; `main`: this process keeps the saved partial statistics of
    an epoch under way (summed over ranks when saved; the other ranks restart theirs at zero)."""
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
        if "torch" in ckpt["rng"]:  # written before the global RNG was saved: nothing to restore
            torch.set_rng_state(ckpt["rng"]["torch"])
        if ckpt["rng"].get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        if state.sampler is not None:
            state.sampler.load_state_dict(ckpt["sampler"])
        current = _pass_from(ckpt.get("in_epoch"), samples, main, device)
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"{last} has unusable trainer state ({err}); start a new --out"
        ) from None
    state.history, state.best = ckpt["history"], ckpt.get("best", {})
    state.epoch, state.current = int(ckpt["epoch"]), current
    if current is None:
        log.info("resuming %s after epoch %d", last, state.epoch)
    else:
        log.info("resuming %s inside epoch %d after step %d", last, state.epoch + 1, current.step)


def _pass_from(
    saved: dict[str, Any] | None, samples: int, main: bool, device: torch.device
) -> _Pass | None:
    """The epoch under way recorded by a checkpoint inside it (None: at an epoch's end)."""
    if saved is None:
        return None
    order = saved["order"]
    if not isinstance(order, torch.Tensor) or len(order) != samples:
        raise ValueError(
            f"its epoch order covers {len(order)} images, the training data has {samples}"
        )
    stats = StepStats.zeros(device)
    if main:
        stats.loss += saved["stats"]["loss"].to(device)
        stats.adv_correct += saved["stats"]["adv_correct"].to(device)
        stats.seen = int(saved["stats"]["seen"])
    return _Pass(order, float(saved["lr"]), stats, int(saved["step"]), float(saved["seconds"]))


def _rng_states(state: _State) -> dict[str, Any]:
    """Every random stream training draws from besides the sampler's: data order and
    augmentation, and torch's global generator (dropout) on the CPU and CUDA devices."""
    rng: dict[str, Any] = {"data": state.data_gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _save(
    out: Path,
    model: nn.Module,
    state: _State,
    identity: dict[str, Any],
    cfg: TrainConfig,
    improved: bool,
) -> None:
    """best.pt (when improved), last.pt (with trainer state) and log.csv, each atomic."""
    payload = _payload(model, state, identity, cfg)
    if improved:
        save_checkpoint(out / "best.pt", payload)
    save_checkpoint(out / "last.pt", {**payload, **_trainer(state)})
    _write_csv(out / "log.csv", state.history)


def _payload(
    model: nn.Module, state: _State, identity: dict[str, Any], cfg: TrainConfig
) -> dict[str, Any]:
    return {
        **identity,
        "model": model.state_dict(),
        "config": cfg.to_dict(),
        "epoch": state.epoch,
        "metrics": state.history[-1] if state.history else {},
        "best": state.best,
        "history": state.history,
    }


def _trainer(state: _State) -> dict[str, Any]:
    return {
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "sampler": state.sampler.state_dict() if state.sampler is not None else None,
        "rng": _rng_states(state),
    }


def _save_inside(
    out: Path,
    model: nn.Module,
    state: _State,
    run: _Pass,
    identity: dict[str, Any],
    cfg: TrainConfig,
    ranks: Ranks,
    seconds: float,
) -> None:
    """last.pt inside an epoch: the epoch-end checkpoint's fields, plus where the epoch stands
    (`in_epoch`). Called on every rank (the statistics are summed over ranks); rank 0 writes."""
    stats = run.stats
    loss, correct = stats.loss.detach().clone(), stats.adv_correct.detach().clone()
    seen = stats.seen
    if ranks.world > 1:
        count = torch.tensor(float(seen), dtype=torch.float64, device=loss.device)
        total = ranks.sum(torch.stack([loss.double(), correct.double(), count]))
        loss, correct, seen = total[0].to(loss.dtype), total[1].to(correct.dtype), int(total[2])
    if not ranks.main:
        return
    in_epoch = {
        "step": run.step,
        "order": run.order,
        "lr": run.lr,
        "seconds": seconds,
        "stats": {"loss": loss.cpu(), "adv_correct": correct.cpu(), "seen": seen},
    }
    payload = _payload(model, state, identity, cfg)
    save_checkpoint(out / "last.pt", {**payload, **_trainer(state), "in_epoch": in_epoch})
    log.info("checkpoint at epoch %d step %d", state.epoch + 1, run.step)


def _epoch(
    model: nn.Module,
    net: nn.Module,
    step: AdversarialStep,
    state: _State,
    run: _Pass,
    data: ImageData,
    cfg: TrainConfig,
    ranks: Ranks,
    policy: DevicePolicy,
    chunks: int,
    report: Callable[[int, torch.Tensor], None],
) -> dict[str, float]:
    """The rest of one pass over the training data (all of it unless resumed inside the epoch):
    `report(i, loss)` after each step (it may checkpoint); returns the training statistics
    summed over ranks."""
    device = policy.device
    drop_last = len(data) >= cfg.batch_size
    steps = max(1, len(data) // cfg.batch_size if drop_last else 1)
    stats = run.stats
    feed = batches(
        data,
        cfg.batch_size,
        shuffle=False,
        order=run.order[run.step * cfg.batch_size :],
        generator=state.data_gen,
        augment=cfg.augment,
        device=device,
        drop_last=drop_last,
    )
    # shard k of this rank's chunks is global shard rank + world * k (see distributed.py)
    shards = [ranks.rank + ranks.world * k for k in range(chunks)]
    for i, (images, labels) in enumerate(feed, start=run.step):
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
        run.step = i + 1
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
    checkpoint_every: float | None = None,
) -> TrainResult:
    """Train `model` (a network or a Supernet); see the module docstring. `progress`: a callback
    given `Progress` reports on rank 0 (a bool is accepted and ignored: epochs are logged).
    `chunks` > 1 accumulates gradients over that many sub-batches per process and step.
    `checkpoint_every`: seconds between checkpoints inside an epoch (default `CHECKPOINT_EVERY`;
    0 checkpoints after every step, or every `PROGRESS_EVERY` steps under torchrun, where rank 0's
    clock decides for all ranks; `math.inf` only at epoch ends)."""
    policy = policy or device_policy(cfg.device)
    ranks = join(policy.device)
    if cfg.batch_size % (ranks.world * chunks):
        raise ConfigError(
            f"batch_size {cfg.batch_size} must divide by {ranks.world} processes x {chunks} chunks"
        )
    every = CHECKPOINT_EVERY if checkpoint_every is None else float(checkpoint_every)
    if not every >= 0:
        raise ConfigError(f"checkpoint_every must be >= 0 seconds, got {checkpoint_every}")
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
    # a rank that raised inside train() may rerun it before rank 0 has finished its last write
    ranks.barrier()
    if last is not None and resume and last.exists():
        _resume(
            model,
            state,
            last,
            identity["arch"],
            cfg,
            samples=len(train_data),
            main=ranks.main,
            device=policy.device,
        )
    point = (state.epoch, state.current.step if state.current is not None else 0)
    if ranks.broadcast(point) != point:
        raise CheckpointError(
            f"rank {ranks.rank} resumed {last} at (epoch, step) {point}, rank 0 elsewhere; "
            "give every process the same --out folder"
        )
    if sampler is not None:  # every rank draws the same paths from rank 0's sampler state
        sampler.load_state_dict(ranks.broadcast(sampler.state_dict()))
    objective: nn.Module = TrainObjective(model, cfg.method, cfg.beta)
    if ranks.world > 1:
        objective = wrap(objective, policy.device, unused_parameters=isinstance(model, Supernet))
    callback = progress if callable(progress) and ranks.main else None
    free = bool(sampler is not None and sampler.free)
    saved_at = time.monotonic()
    for epoch in range(state.epoch, cfg.epochs):
        if state.current is None:  # a new epoch: its order, as batches(shuffle=True) draws it
            order = torch.randperm(len(train_data), generator=state.data_gen)
            lr = optimizer.param_groups[0]["lr"]
            state.current = _Pass(order, lr, StepStats.zeros(policy.device))
        run = state.current
        began = time.perf_counter() - run.seconds

        def report(
            i: int, loss: torch.Tensor, epoch: int = epoch, run: _Pass = run, began: float = began
        ) -> None:
            nonlocal saved_at
            if callback is not None and (i % PROGRESS_EVERY == 0 or i + 1 == steps):
                callback(Progress("step", epoch + 1, cfg.epochs, i + 1, steps, float(loss)))
            if out is None or math.isinf(every):
                return
            late = time.monotonic() - saved_at >= every
            if ranks.world > 1:  # a collective: all ranks ask at the same steps, rank 0 decides
                late = (i + 1) % PROGRESS_EVERY == 0 and ranks.agree(late, policy.device)
            if late:
                seconds = time.perf_counter() - began
                _save_inside(out, model, state, run, identity, cfg, ranks, seconds)
                saved_at = time.monotonic()

        if callback is not None:
            callback(Progress("epoch_start", epoch + 1, cfg.epochs, run.step, steps))
        row: dict[str, float] = {"epoch": epoch + 1, "lr": run.lr}
        row |= _epoch(
            model, objective, step, state, run, train_data, cfg, ranks, policy, chunks, report
        )
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            row.update(validate(model, train_data, val_data, cfg, free=free, ranks=ranks))
        row["seconds"] = time.perf_counter() - began
        state.history.append(row)
        state.epoch, state.current = epoch + 1, None
        improved = "robust_acc" in row and row["robust_acc"] > state.best.get("robust_acc", -1.0)
        if improved:
            keys = ("epoch", "clean_acc", "robust_acc")
            state.best = {k: row[k] for k in keys}
        if ranks.main:
            log.info("epoch %d: %s", epoch + 1, _fmt(row))
            if out is not None:
                _save(out, model, state, identity, cfg, improved)
        saved_at = time.monotonic()
        if callback is not None:
            callback(Progress("epoch_end", epoch + 1, cfg.epochs, steps, steps, row=row))
    return TrainResult(cfg.epochs, state.history, state.best, out)


def _fmt(row: dict[str, float]) -> dict[str, str]:
    keys = ("train_loss", "train_adv_acc", "clean_acc", "robust_acc")
    return {k: f"{row[k]:.3f}" for k in keys if k in row}
