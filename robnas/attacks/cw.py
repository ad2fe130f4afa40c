"""Carlini & Wagner L2 (2017): Adam in tanh space with a binary search over the constant c.

The margin uses the best *other* logit found by masking the true class with -inf, so it is
correct for any logits, including all-negative ones. With `eps` set, the smallest adversarial
found is projected into the L2 ball of that radius.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robnas.attacks.base import Attack, margin


class CW(Attack):
    name = "cw"

    def __init__(
        self,
        eps: float | None = None,
        *,
        c: float = 1.0,
        kappa: float = 0.0,
        steps: int = 100,
        binary_search_steps: int = 6,
        lr: float = 0.01,
        seed: int = 0,
        eval_mode: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm="l2", seed=seed, eval_mode=eval_mode)
        if steps < 1 or binary_search_steps < 1 or c <= 0 or lr <= 0 or kappa < 0:
            raise ValueError("steps, binary_search_steps, c, lr must be > 0 and kappa >= 0")
        self.c = float(c)
        self.kappa = float(kappa)
        self.steps = int(steps)
        self.binary_search_steps = int(binary_search_steps)
        self.lr = float(lr)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        n = images.shape[0]
        dev = images.device
        shape = (-1,) + (1,) * (images.dim() - 1)
        w0 = torch.atanh((images * 2 - 1) * (1 - 1e-6))
        const = torch.full((n,), self.c, device=dev)
        lower = torch.zeros(n, device=dev)
        upper = torch.full((n,), 1e10, device=dev)
        best_l2 = torch.full((n,), float("inf"), device=dev)
        best_adv = images.clone()
        for _ in range(self.binary_search_steps):
            w = w0.clone()
            adam_m = torch.zeros_like(w)
            adam_v = torch.zeros_like(w)
            success = torch.zeros(n, dtype=torch.bool, device=dev)
            for t in range(1, self.steps + 1):
                w.requires_grad_(True)
                adv = (torch.tanh(w) + 1) / 2
                logits = model(adv)
                l2sq = (adv - images).flatten(1).pow(2).sum(1)
                # f = max(z_y - max_other, -kappa): zero once misclassified by kappa.
                f = (-margin(logits, labels)).clamp(min=-self.kappa)
                loss = (l2sq + const * f).sum()
                (grad,) = torch.autograd.grad(loss, w)
                # Adam, written out: cheaper than torch.optim for one tensor, and no state leaks.
                adam_m = 0.9 * adam_m + 0.1 * grad
                adam_v = 0.999 * adam_v + 0.001 * grad * grad
                m_hat = adam_m / (1 - 0.9**t)
                v_hat = adam_v / (1 - 0.999**t)
                w = (w.detach() - self.lr * m_hat / (v_hat.sqrt() + 1e-8)).detach()
                with torch.no_grad():
                    fooled = margin(logits, labels) > 0
                    if self.kappa > 0:
                        fooled &= margin(logits, labels) >= self.kappa
                    better = fooled & (l2sq < best_l2)
                    best_l2 = torch.where(better, l2sq, best_l2)
                    best_adv = torch.where(better.reshape(shape), adv.detach(), best_adv)
                    success |= fooled
            # Binary search: smaller c where it worked, larger (x10 until bracketed) where not.
            upper = torch.where(success, torch.minimum(upper, const), upper)
            lower = torch.where(success, lower, torch.maximum(lower, const))
            bracketed = upper < 1e9
            const = torch.where(success | bracketed, (lower + upper) / 2, const * 10)
        return best_adv
