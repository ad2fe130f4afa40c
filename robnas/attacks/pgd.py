"""PGD (Madry et al. 2018), Linf or L2, random start, restarts, cross-entropy or CW-margin loss.

This is the inner loop of adversarial training and of candidate scoring, so it stays lean:
gradients w.r.t. the input only, no host synchronisation inside the step loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import Attack, flat_norm, input_grad, margin, project, random_in_ball
from robnas.specs import DEFAULT_EPS

LOSSES = ("ce", "cw")


def attack_loss(logits: Tensor, labels: Tensor, loss: str) -> Tensor:
    """A scalar to maximise: summed cross-entropy or summed CW margin."""
    if loss == "ce":
        return F.cross_entropy(logits, labels, reduction="sum")
    return margin(logits, labels).sum()


class PGD(Attack):
    name = "pgd"

    def __init__(
        self,
        eps: float = DEFAULT_EPS,
        *,
        alpha: float | None = None,
        steps: int = 20,
        norm: str = "linf",
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        seed: int = 0,
        eval_mode: bool = True,
        fp32: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed, eval_mode=eval_mode, fp32=fp32)
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1, got {steps} and {restarts}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.alpha = float(alpha) if alpha is not None else eps / 4
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.steps = int(steps)
        self.random_start = bool(random_start)
        self.restarts = int(restarts)
        self.loss = loss

    def _run(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        eps = self.bound()
        if self.random_start:
            adv = random_in_ball(images, eps, self.norm, generator)
        else:
            adv = images.clone()
        for _ in range(self.steps):
            adv.requires_grad_(True)
            grad = input_grad(attack_loss(model(adv), labels, self.loss), adv)
            if self.norm == "linf":
                step = grad.sign()
            else:
                step = grad / (flat_norm(grad, "l2") + 1e-12).reshape(-1, 1, 1, 1)
            adv = project(adv.detach() + self.alpha * step, images, eps, self.norm)
        return adv

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        best = self._run(model, images, labels, generator)
        if self.restarts == 1:
            return best
        # Keep the first successful restart per example; decided on device, no host sync.
        with torch.no_grad():
            fooled = model(best).argmax(1) != labels
        for _ in range(self.restarts - 1):
            adv = self._run(model, images, labels, generator)
            with torch.no_grad():
                now = model(adv).argmax(1) != labels
            take = now & ~fooled
            best = torch.where(take.reshape(-1, 1, 1, 1), adv, best)
            fooled = fooled | now
        return best
