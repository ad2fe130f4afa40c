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

    def _start(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """A restart's starting point for every row of the batch (the one draw PGD makes)."""
        if self.random_start:
            return random_in_ball(images, self.bound(), self.norm, generator)
        return images.clone()

    def _steps(self, model: nn.Module, adv: Tensor, images: Tensor, labels: Tensor) -> Tensor:
        eps = self.bound()
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
        return self._attack(model, images, labels, generator, None)

    def perturb_only(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        only: Tensor,
    ) -> Tensor:
        """Steps only on the rows of `only`: every example's attack is independent of the others
        (eval mode, a summed loss), and each restart still draws its start for the whole batch,
        so those rows equal `perturb`'s (within float rounding). The other rows keep the first
        start. Scoring skips the images a model already gets wrong clean this way: at 35% clean
        accuracy, about 2.5x less attack work for the same robust accuracy."""
        if not self.eval_mode:  # BatchNorm on batch statistics couples the rows: attack all
            return self.perturb(model, images, labels, generator)
        return self._attack(model, images, labels, generator, only.nonzero().squeeze(1))

    def _attack(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        rows: Tensor | None,
    ) -> Tensor:
        """Restarts of `_steps`, on `rows` of the batch (None: all); starts are drawn for all."""

        def pick(t: Tensor) -> Tensor:
            return t if rows is None else t[rows]

        first = self._start(images, generator)
        if rows is not None and rows.numel() == 0:
            return first
        x, y = pick(images), pick(labels)
        best = self._steps(model, pick(first), x, y)
        if self.restarts > 1:
            # Keep the first successful restart per example; decided on device, no host sync.
            with torch.no_grad():
                fooled = model(best).argmax(1) != y
            for _ in range(self.restarts - 1):
                adv = self._steps(model, pick(self._start(images, generator)), x, y)
                with torch.no_grad():
                    now = model(adv).argmax(1) != y
                take = now & ~fooled
                best = torch.where(take.reshape(-1, 1, 1, 1), adv, best)
                fooled = fooled | now
        if rows is None:
            return best
        return first.index_copy(0, rows, best.detach())
