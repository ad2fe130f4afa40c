"""Zero-cost accuracy proxies from the NAS literature, scored on an untrained network.

- `naswot` (Mellor et al., ICML 2021, "Neural Architecture Search without Training"): the binary
  ReLU activation codes of a minibatch; K[i, j] counts the units where images i and j agree
  (on/off), summed over every ReLU; the score is log|det K|. Networks whose ReLUs separate the
  images into distinct linear regions score higher and train to higher accuracy.
- `zico` (Li et al., ICLR 2023, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
  Gradients"): for each conv/linear weight tensor, sum over its entries of mean |gradient| /
  standard deviation of the gradient across `zico_batches` minibatches (the k-th holds every
  k-th image, so a class-ordered batch still mixes classes); the score is the sum of the logs
  over the layers. Large, consistent gradients go with fast convergence and accuracy.

Both run the network in train mode (batch statistics in BatchNorm, as the papers do at
initialisation); modes, parameters and running statistics are restored, and parameter gradients
are taken with `torch.autograd.grad`, never accumulated into `.grad`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import frozen_model
from robnas.indicators.base import IndicatorConfig, check_batch, model_device


def naswot(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """log|det K| of the Hamming-agreement kernel of the ReLU codes of `images` (one batch;
    every `nn.ReLU` module that runs counts, a functional relu does not)."""
    check_batch(images, labels)
    x = images.to(model_device(model))
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def count(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        on = (output > 0).flatten(1).double()
        kernel.add_(on @ on.T + (1 - on) @ (1 - on).T)

    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_hook(count) for m in relus]
    try:
        with frozen_model(model, mode="train"), torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def zico(model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig) -> float:
    """Sum over conv/linear layers of log(sum of mean|g| / std(g)) across `cfg.zico_batches`."""
    check_batch(images, labels)
    if images.shape[0] < 2 * cfg.zico_batches:
        raise ValueError(f"zico needs at least 2 images per batch, {cfg.zico_batches} batches")
    device = model_device(model)
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    per_batch: list[list[Tensor]] = []
    with frozen_model(model, mode="train"), torch.enable_grad():
        for p in weights:
            p.requires_grad_(True)
        k = cfg.zico_batches  # strided, not contiguous: a class-ordered batch still mixes
        for x, y in ((images[b::k], labels[b::k]) for b in range(k)):
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            per_batch.append(
                [torch.zeros_like(p) if g is None else g for p, g in zip(weights, grads)]
            )
    score = 0.0
    for layer in zip(*per_batch):
        g = torch.stack(layer).flatten(1).double()  # (batches, entries)
        std = g.std(dim=0, unbiased=False)
        signal = g.abs().mean(dim=0)
        keep = std > 0
        total = float((signal[keep] / std[keep]).sum())
        if total > 0:
            score += math.log(total)
    return score
