"""MI-FGSM (Dong et al. 2018): iterative FGSM with an L1-normalised gradient momentum."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import Attack, input_grad, project
from robnas.specs import DEFAULT_EPS


class MIFGSM(Attack):
    name = "mifgsm"

    def __init__(
        self,
        eps: float = DEFAULT_EPS,
        *,
        alpha: float | None = None,
        steps: int = 10,
        decay: float = 1.0,
        seed: int = 0,
        eval_mode: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm="linf", seed=seed, eval_mode=eval_mode)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.alpha = float(alpha) if alpha is not None else eps / steps
        self.decay = float(decay)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        eps = self.bound()
        adv = images.clone()
        momentum = torch.zeros_like(images)
        for _ in range(self.steps):
            adv.requires_grad_(True)
            grad = input_grad(F.cross_entropy(model(adv), labels, reduction="sum"), adv)
            l1 = grad.abs().mean(dim=(1, 2, 3), keepdim=True)
            momentum = self.decay * momentum + grad / (l1 + 1e-12)
            adv = project(adv.detach() + self.alpha * momentum.sign(), images, eps, "linf")
        return adv
