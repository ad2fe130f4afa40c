"""Model size and cost: trainable parameters and multiply-adds at a given input size."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Trainable parameters; a parameter shared between modules counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _probe_tensor(model: nn.Module, input_size: tuple[int, ...]) -> torch.Tensor:
    # Follow the model's device (meta included) and float dtype, so huge models cost no memory.
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return torch.zeros(input_size, device=t.device, dtype=t.dtype)
    return torch.zeros(input_size)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-adds of one forward pass at input_size (convolutions and matmuls; FLOPs / 2).

    Runs in eval mode under no_grad so BatchNorm statistics are untouched; each module's
    train/eval flag is restored afterwards. Works on models built on the meta device.
    """
    modes = [(m, m.training) for m in model.modules()]
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with counter, torch.no_grad():
            model(_probe_tensor(model, input_size))
    finally:
        for module, training in modes:
            module.training = training
    return int(counter.get_total_flops()) // 2
