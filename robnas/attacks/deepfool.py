"""DeepFool (Moosavi-Dezfooli et al. 2016), batched, L2 or Linf.

Each step linearises the classifier around the current point and moves to the nearest linearised
boundary among the `candidates` most likely classes. The overshoot multiplies the *total*
perturbation (as in the paper and foolbox), so points actually cross the boundary instead of
stalling just short of it. With `eps` set the result is projected into that ball.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robnas.attacks.base import Attack, input_grad


class DeepFool(Attack):
    name = "deepfool"

    def __init__(
        self,
        eps: float | None = None,
        *,
        norm: str = "l2",
        steps: int = 50,
        overshoot: float = 0.02,
        candidates: int = 10,
        check_every: int = 5,
        seed: int = 0,
        eval_mode: bool = True,
        fp32: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed, eval_mode=eval_mode, fp32=fp32)
        if steps < 1 or candidates < 2 or check_every < 1:
            raise ValueError("steps and check_every must be >= 1 and candidates >= 2")
        if overshoot < 0:
            raise ValueError(f"overshoot must be >= 0, got {overshoot}")
        self.steps = int(steps)
        self.overshoot = float(overshoot)
        self.candidates = int(candidates)
        self.check_every = int(check_every)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        with torch.no_grad():
            logits = model(images)
        k = min(self.candidates, logits.shape[1])
        # The true class first, then the k-1 most likely others.
        onehot = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
        order = logits.masked_fill(onehot, float("inf")).argsort(dim=1, descending=True)
        others = order[:, 1:k]
        total = torch.zeros_like(images)
        adv = images.clone()
        shape = (-1,) + (1,) * (images.dim() - 1)
        for step in range(self.steps):
            x = adv.clone().requires_grad_(True)
            out = model(x)
            active = out.argmax(1) == labels
            # One host sync every `check_every` steps, to stop once every point has crossed.
            if step > 0 and step % self.check_every == 0 and not bool(active.any()):
                break
            true = out.gather(1, labels[:, None]).squeeze(1)
            diffs, grads = [], []
            for j in range(k - 1):
                diff = out.gather(1, others[:, j : j + 1]).squeeze(1) - true
                g = input_grad(diff.sum(), x, retain_graph=j < k - 2)
                diffs.append(diff.detach())
                grads.append(g)
            diff_t = torch.stack(diffs, 1)  # (N, k-1), negative while still correct
            grad_t = torch.stack(grads, 1)  # (N, k-1, C, H, W)
            flat = grad_t.flatten(2)
            dual = flat.abs().sum(2) if self.norm == "linf" else flat.norm(dim=2)
            dist = diff_t.abs() / (dual + 1e-8)
            best = dist.argmin(1)
            d = dist.gather(1, best[:, None]).squeeze(1)
            g = grad_t[torch.arange(len(best), device=best.device), best]
            if self.norm == "linf":
                step_p = (d + 1e-4).reshape(shape) * g.sign()
            else:
                g_norm = g.flatten(1).norm(dim=1) + 1e-8
                step_p = ((d + 1e-4) / g_norm).reshape(shape) * g
            total = total + torch.where(active.reshape(shape), step_p, torch.zeros_like(step_p))
            adv = (images + (1 + self.overshoot) * total).clamp(0.0, 1.0)
        return adv
