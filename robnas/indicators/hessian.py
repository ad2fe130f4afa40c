"""Input-Hessian indicator: the largest eigenvalue of the Hessian of the loss w.r.t. the input.

Jung, Lukasik and Keuper (ICLR 2023) report it beside the Jacobian norm as a training-free
predictor of robustness: a flatter loss surface around the input (smaller top eigenvalue) goes
with more robust networks. Power iteration on Hessian-vector products (double backward) finds the
eigenvalue without forming the Hessian. In eval mode the examples do not interact, so the batch
Hessian is block diagonal and one batched product gives every example's own H_i v_i: each example
runs its own power iteration, and the indicator is the mean of their top eigenvalues.

Power iteration finds the eigenvalue of largest magnitude. For networks that are piecewise linear
in the input (ReLU, pooling: every cell space here) the Hessian is J^T S J with S the PSD Hessian
of the cross-entropy in the logits, so it is PSD and that eigenvalue is the largest one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import frozen_model
from robnas.indicators.base import IndicatorConfig, check_batch, model_device


def _hvp(model: nn.Module, x: Tensor, labels: Tensor, v: Tensor) -> Tensor:
    """Per-example Hessian-vector products of the summed cross-entropy w.r.t. the input."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    if not loss.requires_grad:  # a path that ignores its input: the Hessian is zero
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    if not grad.requires_grad:  # piecewise-linear to the last layer without curvature
        return torch.zeros_like(x)
    (hv,) = torch.autograd.grad(grad, x, grad_outputs=v)
    return hv


def top_eigenvalues(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    iterations: int = 20,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per example, the largest-magnitude eigenvalue of the input Hessian of the loss (N,).

    Stops early once every example's Rayleigh quotient changed by less than `tol` (relative).
    """
    n = images.shape[0]
    v = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    v = v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, 1, 1, 1)
    eig = torch.zeros(n, device=images.device, dtype=images.dtype)
    for _ in range(iterations):
        hv = _hvp(model, images, labels, v)
        new = (hv * v).flatten(1).sum(1)  # Rayleigh quotient v^T H v with |v| = 1
        norms = hv.flatten(1).norm(dim=1)
        if bool((norms == 0).all()):
            return torch.zeros_like(eig)
        v = hv / norms.clamp_min(1e-12).view(n, 1, 1, 1)
        done = bool(((new - eig).abs() <= tol * new.abs().clamp_min(1e-12)).all())
        eig = new
        if done:
            break
    return eig.detach()


def hessian_eig(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Mean over the batch of the input Hessian's largest eigenvalue (lower is flatter)."""
    check_batch(images, labels)
    device = model_device(model)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    total = 0.0
    with frozen_model(model), torch.enable_grad():
        for start in range(0, images.shape[0], cfg.batch_size):
            x = images[start : start + cfg.batch_size].to(device)
            y = labels[start : start + cfg.batch_size].to(device)
            eig = top_eigenvalues(
                model, x, y, iterations=cfg.hessian_iterations, generator=generator
            )
            total += float(eig.sum())
    return total / images.shape[0]
