"""Input-Jacobian norm: mean over examples of ||d logits / d input||_F (lower is smoother).

Exact: one backward pass per class, since ||J||_F^2 = sum_c ||e_c^T J||^2. Estimated
(Hutchinson-style): for v ~ N(0, I) over the classes E[||v^T J||^2] = tr(J J^T) = ||J||_F^2, so
k vector-Jacobian products give an unbiased estimate of the squared norm (its square root is taken
per example). The model runs in eval mode so the examples do not interact through BatchNorm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robnas.attacks.base import frozen_model, input_grad
from robnas.indicators.base import IndicatorConfig, check_batch, model_device


def jacobian_sq_norms(
    model: nn.Module,
    images: Tensor,
    *,
    projections: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per example ||J||_F^2 (N,); exact when projections is None, else estimated with k of them."""
    x = images.detach().clone().requires_grad_(True)
    logits = model(x)
    n, k_classes = logits.shape
    sq = torch.zeros(n, device=x.device)
    if projections is None:
        for c in range(k_classes):
            g = input_grad(logits[:, c].sum(), x, retain_graph=c < k_classes - 1)
            sq += g.pow(2).flatten(1).sum(1)
        return sq
    for i in range(projections):
        v = torch.randn(n, k_classes, generator=generator, device=x.device, dtype=logits.dtype)
        g = input_grad(logits, x, grad_outputs=v, retain_graph=i < projections - 1)
        sq += g.pow(2).flatten(1).sum(1)
    return sq / projections


def jac_norm(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Mean over the batch of the Frobenius norm of the logits' Jacobian w.r.t. the input."""
    check_batch(images, labels)
    device = model_device(model)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    total = torch.zeros((), device=device)
    with frozen_model(model), torch.enable_grad():
        projections = _projections(model, images[:1].to(device), cfg)
        for start in range(0, images.shape[0], cfg.batch_size):
            x = images[start : start + cfg.batch_size].to(device)
            sq = jacobian_sq_norms(model, x, projections=projections, generator=generator)
            total += sq.sqrt().sum()
    return float(total) / images.shape[0]


def _projections(model: nn.Module, x: Tensor, cfg: IndicatorConfig) -> int | None:
    if cfg.jac_method == "exact":
        return None
    if cfg.jac_method == "random":
        return cfg.jac_projections
    with torch.no_grad():
        classes = int(model(x[:1]).shape[1])
    return None if classes <= cfg.jac_projections else cfg.jac_projections
