"""Robust validation during training: clean and PGD accuracy on a fixed held-out subset.

An example counts as robust only when the clean prediction is right too (as the indicators
count it): an attack cannot make a wrong prediction robust. Under DDP each rank attacks its
strided slice of the subset and the correct counts are summed over ranks.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.attacks import PGD, Attack
from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, batches
from robnas.models.samplers import UniformOpSampler
from robnas.models.supernet import Supernet, recalibrate
from robnas.training.distributed import Ranks


def robust_counts(
    model: nn.Module,
    data: ImageData,
    attack: Attack,
    batch_size: int = 256,
    *,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """[clean correct, robust correct (and clean correct), examples] in eval mode and fp32
    (modes restored afterwards), as a float64 tensor on the model's device."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    counts = torch.zeros(3, dtype=torch.float64, device=dev)
    generator = torch.Generator(device=dev).manual_seed(attack.seed)
    try:
        for images, labels in batches(data, batch_size, shuffle=False, device=dev):
            with torch.no_grad():
                clean_ok = model(images).argmax(1) == labels
            adv = attack(model, images, labels, generator=generator, only=clean_ok)
            with torch.no_grad():
                robust_ok = (model(adv).argmax(1) == labels) & clean_ok
            counts[0] += clean_ok.sum()
            counts[1] += robust_ok.sum()
            counts[2] += labels.shape[0]
    finally:
        for module, mode in modes:
            module.training = mode
    return counts


def _rates(counts: torch.Tensor) -> dict[str, float]:
    clean, robust, n = (float(c) for c in counts)
    n = max(1.0, n)
    return {"clean_acc": clean / n, "robust_acc": robust / n}


def evaluate_robust(
    model: nn.Module,
    data: ImageData,
    attack: Attack,
    batch_size: int = 256,
    *,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Clean accuracy and robust accuracy (attacked and clean both correct) on `data`."""
    return _rates(robust_counts(model, data, attack, batch_size, device=device))


def validate(
    model: nn.Module,
    train_data: ImageData,
    val_data: ImageData,
    cfg: TrainConfig,
    *,
    free: bool = False,
    ranks: Ranks | None = None,
) -> dict[str, float]:
    """PGD-`val_steps` robust validation on a fixed held-out subset. A supernet is scored as the
    mean over `val_paths` fixed paths, each with BN recalibrated on training batches (the
    supernet's own statistics are restored afterwards). Counts are summed over `ranks`."""
    ranks = ranks or Ranks()
    device = next(model.parameters()).device
    subset = (
        val_data.subset(cfg.val_size, cfg.seed) if 0 < cfg.val_size < len(val_data) else val_data
    )
    if ranks.world > 1:
        subset = subset.take(torch.arange(ranks.rank, len(subset), ranks.world))
    attack = PGD(cfg.eps, alpha=cfg.eps / 4, steps=cfg.val_steps, seed=cfg.seed)
    bs = min(256, max(cfg.batch_size, 64))
    if not isinstance(model, Supernet):
        return _rates(ranks.sum(robust_counts(model, subset, attack, bs, device=device)))
    paths = UniformOpSampler(model.space, cfg.seed + 7919, free=free, macro=model.macro)
    saved = {k: b.clone() for k, b in model.named_buffers()}
    scores = []
    try:
        for _ in range(cfg.val_paths):
            g = paths.sample()
            with model.using(g):
                # the same fixed-seed batches for every path and every rank
                order = torch.Generator().manual_seed(cfg.seed)
                recalibrate(model, train_data, cfg.recal_batches, cfg.batch_size, order, device)
                counts = robust_counts(model, subset, attack, bs, device=device)
                scores.append(_rates(ranks.sum(counts)))
                with torch.no_grad():
                    for k, b in model.named_buffers():
                        b.copy_(saved[k])
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(saved[k])
    return {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}
