"""Tiny models for the attack tests: an untrained CNN and one trained for seconds on CIFAR-10.

The trained model is cached per process (every attack test module shares it, also under xdist).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robnas.data.datasets import DATASETS, batches, load_dataset
from robnas.ops import Normalize

INFO = DATASETS["cifar10"]


def tiny_cnn(width: int = 16, bn: bool = True) -> nn.Sequential:
    """Normalize -> conv -> (BN) -> ReLU -> pool -> conv -> ReLU -> pool -> linear (10 classes)."""
    return nn.Sequential(
        Normalize(INFO.mean, INFO.std),
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width) if bn else nn.Identity(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 8 * 8, 10),
    )


@functools.cache
def trained_cnn(data_root: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, 200 test images, labels): trained ~3 s on 2,000 CIFAR-10 images."""
    train = load_dataset("cifar10", "train", data_dir=data_root, limit=2000, seed=0)
    test = load_dataset("cifar10", "test", data_dir=data_root, limit=200, seed=1)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(4):
        for x, y in batches(train, 64, shuffle=True, generator=gen):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return model, test.floats(), test.labels


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())
