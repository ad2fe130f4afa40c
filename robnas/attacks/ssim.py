"""SSIM (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5), per image, data range 1.

Computed per channel on the valid region (no padding), then averaged, as in the reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

C1 = 0.01**2
C2 = 0.03**2


def gaussian_window(size: int, sigma: float, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float()


def ssim(x: Tensor, y: Tensor, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM between two batches of images in [0, 1], shape (N,). Windows shrink for tiny images."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (N,C,H,W) batches of one shape, got {x.shape}, {y.shape}")
    size = min(window, x.shape[-1], x.shape[-2])
    size -= 1 - size % 2  # keep it odd
    channels = x.shape[1]
    kernel = gaussian_window(size, sigma, x.device).expand(channels, 1, size, size)
    x, y = x.float(), y.float()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    return (num / den).flatten(1).mean(1)
