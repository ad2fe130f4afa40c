"""Operations by their paper names, and the Normalize layer that starts every model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from robnas.registry import Registry


class Normalize(nn.Module):
    """Per-channel (x - mean) / std; models take images in [0,1] and normalise inside."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
