"""Adversarial training of networks and supernets: epochs, validation, checkpoints, resume.

`train(model, train_data, val_data, cfg, out_dir)` runs PGD-AT / TRADES / FGSM-RS. For a
`Supernet` each step trains a new path drawn from the sampler. Every epoch ends with robust
validation (PGD on a fixed held-out subset), an atomic `last.pt` (model, optimiser, scheduler,
sampler and RNG states), `best.pt` when robust accuracy improves, and `log.csv`. Resuming from
`last.pt` reproduces the uninterrupted run. On CUDA: bf16 autocast for training steps,
channels_last, DDP under torchrun (WORLD_SIZE), each rank taking its slice of every batch.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.attacks import PGD, Attack
from robnas.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, batches
from robnas.errors import CheckpointError, ConfigError
from robnas.models.samplers import PathSampler, UniformOpSampler
from robnas.models.supernet import Supernet, recalibrate_bn
from robnas.training.steps import (
    AdversarialStep,
    StepStats,
    make_optimizer,
    make_scheduler,
)

__all__ = [
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


@dataclass
class TrainResult:
    epochs: int
    history: list[dict[str, float]]
    best: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


@torch.no_grad()
def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (model(images).argmax(1) == labels).sum()


def evaluate_robust(
    model: nn.Module,
    data: ImageData,
    attack: Attack,
    batch_size: int = 256,
    *,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Clean and attacked accuracy in eval mode and fp32 (modes restored afterwards)."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    clean = torch.zeros((), dtype=torch.long, device=dev)
    robust = torch.zeros((), dtype=torch.long, device=dev)
    generator = torch.Generator(device=dev).manual_seed(attack.seed)
    try:
        for images, labels in batches(data, batch_size, shuffle=False, device=dev):
            clean += _accuracy(model, images, labels)
            adv = attack(model, images, labels, generator=generator)
            robust += _accuracy(model, adv, labels)
    finally:
        for module, mode in modes:
            module.training = mode
    n = max(1, len(data))
    return {"clean_acc": float(clean) / n, "robust_acc": float(robust) / n}


def validate(
    model: nn.Module,
    train_data: ImageData,
    val_data: ImageData,
    cfg: TrainConfig,
    *,
    free: bool = False,
) -> dict[str, float]:
    """PGD-`val_steps` robust validation on a fixed held-out subset. A supernet is scored as the
    mean over `val_paths` fixed paths, each with BN recalibrated on training batches (the
    supernet's own statistics are restored afterwards)."""
    device = next(model.parameters()).device
    subset = (
        val_data.subset(cfg.val_size, cfg.seed) if 0 < cfg.val_size < len(val_data) else val_data
    )
    attack = PGD(cfg.eps, alpha=cfg.eps / 4, steps=cfg.val_steps, seed=cfg.seed)
    bs = min(256, max(cfg.batch_size, 64))
    if not isinstance(model, Supernet):
        return evaluate_robust(model, subset, attack, bs, device=device)
    paths = UniformOpSampler(model.space, cfg.seed + 7919, free=free, macro=model.macro)
    saved = {k: b.clone() for k, b in model.named_buffers()}
    scores = []
    try:
        for _ in range(cfg.val_paths):
            g = paths.sample()
            with model.using(g):
                feed = batches(train_data, cfg.batch_size, shuffle=False, device=device)
                recalibrate_bn(model, feed, n_batches=cfg.recal_batches)
                scores.append(evaluate_robust(model, subset, attack, bs, device=device))
                for k, b in model.named_buffers():
                    b.copy_(saved[k])
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(saved[k])
    return {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}


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


def train(
    model: nn.Module,
    train_data: ImageData,
    val_data: ImageData,
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    sampler: PathSampler | None = None,
    resume: bool = False,
    progress: bool = False,
    spec: Any = None,
) -> TrainResult:
    """Adversarially train `model` (a network or a Supernet); see the module docstring."""
    device = resolve_device(cfg.device)
    rank, world = _distributed(device)
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} must divide by the {world} processes")
    out = Path(out_dir) if out_dir is not None else None
    last = out / "last.pt" if out is not None else None
    if last is not None and last.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose a new --out"
        )
    if isinstance(model, Supernet) and sampler is None:
        sampler = UniformOpSampler(model.space, cfg.seed, macro=model.macro)
    cuda = device.type == "cuda"
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    drop_last = len(train_data) >= cfg.batch_size
    steps_per_epoch = max(1, len(train_data) // cfg.batch_size if drop_last else 1)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    step = AdversarialStep(cfg, optimizer, scheduler, autocast=cuda)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    attack_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    identity = _identity(model, spec)
    history: list[dict[str, float]] = []
    best: dict[str, float] = {}
    start_epoch = 0

    if last is not None and resume and last.exists():
        ckpt = load_checkpoint(last, identity["arch"])
        if _comparable(ckpt.get("config", {})) != _comparable(cfg.to_dict()):
            diff = sorted(
                k
                for k, v in _comparable(cfg.to_dict()).items()
                if ckpt.get("config", {}).get(k) != v
            )
            raise CheckpointError(
                f"{last} was written with other settings ({', '.join(diff)}); rerun with the same settings or a new --out"
            )
        load_model_state(model, ckpt["model"], str(last))
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            data_gen.set_state(ckpt["rng"]["data"])
            attack_gen.set_state(ckpt["rng"]["attack"].to(attack_gen.get_state().device))
            if sampler is not None:
                sampler.load_state_dict(ckpt["sampler"])
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            raise CheckpointError(
                f"{last} has unusable trainer state ({err}); start a new --out"
            ) from None
        history, best, start_epoch = ckpt["history"], ckpt.get("best", {}), int(ckpt["epoch"])
        log.info("resuming %s at epoch %d", last, start_epoch)

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if cuda else None,
            find_unused_parameters=isinstance(model, Supernet),
        )
    free = bool(sampler is not None and sampler.free)
    for epoch in range(start_epoch, cfg.epochs):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        stats = StepStats.zeros(device)
        feed = batches(
            train_data,
            cfg.batch_size,
            shuffle=True,
            generator=data_gen,
            augment=cfg.augment,
            device=device,
            drop_last=drop_last,
        )
        bar = _progress(
            feed, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", progress and rank == 0
        )
        for i, (images, labels) in enumerate(bar):
            if world > 1:
                images, labels = images[rank::world], labels[rank::world]
            if cuda:
                images = images.contiguous(memory_format=torch.channels_last)
            if sampler is not None and isinstance(model, Supernet):
                model.set_path(sampler.sample())
            loss, logits = step(net, images, labels, attack_gen, attack_model=model)
            stats.add(loss, logits, labels)
            if progress and rank == 0 and i % 10 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", **_fmt(best))  # type: ignore[attr-defined]
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "lr": lr,
            **stats.summary(),
        }
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            row.update(validate(model, train_data, val_data, cfg, free=free))
        row["seconds"] = time.perf_counter() - began
        history.append(row)
        improved = "robust_acc" in row and row["robust_acc"] > best.get("robust_acc", -1.0)
        if improved:
            best = {
                "epoch": row["epoch"],
                "clean_acc": row["clean_acc"],
                "robust_acc": row["robust_acc"],
            }
        log.info("epoch %d: %s", epoch + 1, _fmt(row))
        if progress and rank == 0:
            bar.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v}" for k, v in _fmt(row).items()))  # type: ignore[attr-defined]
        if out is not None and rank == 0:
            payload = {
                **identity,
                "model": model.state_dict(),
                "config": cfg.to_dict(),
                "epoch": epoch + 1,
                "metrics": row,
                "best": best,
                "history": history,
            }
            if improved:
                save_checkpoint(out / "best.pt", payload)
            save_checkpoint(
                last,  # type: ignore[arg-type]
                {
                    **payload,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "sampler": sampler.state_dict() if sampler is not None else None,
                    "rng": {"data": data_gen.get_state(), "attack": attack_gen.get_state()},
                },
            )
            _write_csv(out / "log.csv", history)
    return TrainResult(cfg.epochs, history, best, out)


def finetune(
    model: nn.Module, data: ImageData, cfg: TrainConfig, *, generator: torch.Generator | None = None
) -> dict[str, float]:
    """A short adversarial fine-tune of a standalone network (no validation, no files).
    Returns the last epoch's training loss and adversarial accuracy."""
    device = next(model.parameters()).device
    gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
    attack_gen = torch.Generator(device=device).manual_seed(
        int(torch.randint(2**31, (1,), generator=gen))
    )
    drop_last = len(data) >= cfg.batch_size
    steps_per_epoch = max(1, len(data) // cfg.batch_size if drop_last else 1)
    optimizer = make_optimizer(model, cfg)
    step = AdversarialStep(cfg, optimizer, make_scheduler(optimizer, cfg, steps_per_epoch))
    summary: dict[str, float] = {}
    for _ in range(cfg.epochs):
        stats = StepStats.zeros(device)
        for images, labels in batches(
            data,
            cfg.batch_size,
            shuffle=True,
            generator=gen,
            augment=cfg.augment,
            device=device,
            drop_last=drop_last,
        ):
            loss, logits = step(model, images, labels, attack_gen)
            stats.add(loss, logits, labels)
        summary = stats.summary()
    return summary


def _fmt(row: dict[str, float]) -> dict[str, str]:
    keys = ("train_loss", "train_adv_acc", "clean_acc", "robust_acc")
    return {k: f"{row[k]:.3f}" for k in keys if k in row}


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
