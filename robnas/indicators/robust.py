"""Clean and robust accuracy of a model on given images under a given attack.

Robust accuracy counts an example only if it is classified correctly both clean and under
attack (an attack is never credited with "fixing" a wrong prediction), as the attack suite does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robnas.attacks import make_attack
from robnas.attacks.base import Attack, frozen_model
from robnas.indicators.base import IndicatorConfig, check_batch, model_device


def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    with frozen_model(model), torch.no_grad():
        return model(x).argmax(1) == y


def clean_accuracy(
    model: nn.Module, images: Tensor, labels: Tensor, *, batch_size: int = 128
) -> float:
    """Fraction of images classified correctly (eval mode; modes restored)."""
    check_batch(images, labels)
    device = model_device(model)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        correct += _correct(model, x, y).sum()
    return int(correct) / images.shape[0]


def robust_accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    attack: Attack,
    *,
    batch_size: int = 128,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """(clean accuracy, accuracy under `attack`); one generator stream runs through the batches."""
    check_batch(images, labels)
    device = model_device(model)
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(attack.seed)
    clean = torch.zeros((), dtype=torch.long, device=device)
    robust = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        ok = _correct(model, x, y)
        # a clean miss is never robust: the attack and the check run on the clean hits only
        adv = attack(model, x, y, generator=generator, only=ok)
        clean += ok.sum()
        if ok.any():
            robust += _correct(model, adv[ok], y[ok]).sum()
    n = images.shape[0]
    return int(clean) / n, int(robust) / n


def robust_acc(
    model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig
) -> dict[str, float]:
    """`clean_acc` and `<eval_attack>_acc` (e.g. pgd20_acc) with cfg's attack, eps and seed."""
    attack = make_attack(cfg.eval_attack, eps=cfg.eps, seed=cfg.seed)
    clean, robust = robust_accuracy(model, images, labels, attack, batch_size=cfg.batch_size)
    return {"clean_acc": clean, f"{cfg.eval_attack.lower()}_acc": robust}
