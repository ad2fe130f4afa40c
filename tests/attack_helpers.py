"""Tiny models for the attack tests: an untrained CNN and one trained for seconds on CIFAR-10.

The trained model is cached per process (every attack test module shares it, also under xdist).
It is trained on one thread: a float32 reduction's order, and so its rounding, depends on the
thread count, and training amplifies that into a different model (clean accuracy 0.425 with one
thread, 0.415 with two, measured); with one thread every run gets the same weights.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
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


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread (same reduction order whatever the machine's default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def trained_cnn(data_root: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, 200 test images, labels): trained ~4 s on 2,000 CIFAR-10 images."""
    train = load_dataset("cifar10", "train", data_dir=data_root, limit=2000, seed=0)
    test = load_dataset("cifar10", "test", data_dir=data_root, limit=200, seed=1)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    with single_thread():
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


def float64_probe(n: int = 8, width: int = 4) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(seeded untrained float64 CNN, n random images, labels = its own predictions).

    For exact cross-checks: in float64 two implementations of one algorithm agree to ~1e-13,
    far below one attack step, on any thread count. Labels are the predictions, so every example
    starts correctly classified and every attack moves it.
    """
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tiny_cnn(width).double().eval()
    images = torch.rand(n, 3, 32, 32, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return model, images, labels


def fooled(model: nn.Module, adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: misclassified after the attack (bool)."""
    with torch.no_grad():
        return model(adv).argmax(1) != labels


def not_weaker(strong: torch.Tensor, weak: torch.Tensor) -> tuple[bool, str]:
    """Paired sign test that attack `strong` fools no fewer examples than attack `weak`.

    Of the discordant examples, d are fooled by `weak` only and e by `strong` only. If the two
    were equally strong, each discordant example would favour either with probability 1/2, so
    d - e has mean 0 and standard deviation sqrt(d + e). `strong` fails only when d - e exceeds
    3 standard deviations (a false alarm below 0.2%), so the tolerance grows with the number of
    examples where the attacks disagree instead of being a fixed count of images.
    """
    d = int((weak & ~strong).sum())
    e = int((strong & ~weak).sum())
    return d - e <= 3 * (d + e) ** 0.5, f"weak-only {d}, strong-only {e}"
