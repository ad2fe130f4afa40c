"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import Attack, input_grad
from robnas.specs import DEFAULT_EPS


class FGSM(Attack):
    name = "fgsm"

    def __init__(
        self, eps: float = DEFAULT_EPS, *, seed: int = 0, eval_mode: bool = True, fp32: bool = True
    ) -> None:
        super().__init__(eps=eps, norm="linf", seed=seed, eval_mode=eval_mode, fp32=fp32)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        x = images.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), labels, reduction="sum")
        return images + self.bound() * input_grad(loss, x).sign()
