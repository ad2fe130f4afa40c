"""A short training run of a standalone network: no validation, no files (one-shot candidates)."""

from __future__ import annotations

import torch
from torch import nn

from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, batches
from robnas.device import DevicePolicy
from robnas.training.steps import AdversarialStep, StepStats, make_optimizer, make_scheduler


def finetune(
    model: nn.Module,
    data: ImageData,
    cfg: TrainConfig,
    *,
    generator: torch.Generator | None = None,
    policy: DevicePolicy | None = None,
) -> dict[str, float]:
    """Fine-tune `model` in place with `cfg.method` for `cfg.epochs`. With a `policy` the model
    is prepared by it (device, channels_last, compile) and steps use its autocast.
    Returns the last epoch's training loss and accuracy on the trained inputs."""
    if policy is not None:
        policy.prepare(model)
    device = next(model.parameters()).device
    gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
    attack_gen = torch.Generator(device=device).manual_seed(
        int(torch.randint(2**31, (1,), generator=gen))
    )
    drop_last = len(data) >= cfg.batch_size
    steps_per_epoch = max(1, len(data) // cfg.batch_size if drop_last else 1)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    step = AdversarialStep(cfg, optimizer, scheduler, policy=policy)
    summary: dict[str, float] = {}
    done = 0
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
            if policy is not None:
                images = policy.inputs(images)
            eps_scale = cfg.eps_scale(done, steps_per_epoch)
            loss, logits = step(model, images, labels, attack_gen, eps_scale=eps_scale)
            done += 1
            stats.add(loss, logits, labels)
        summary = stats.summary()
    return summary
