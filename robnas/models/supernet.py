"""The weight-sharing supernet: every op of every edge exists once; a forward runs one path.

`Supernet(space, macro)` wraps `build_supernet(space, macro)`. The active path is either passed per call
(`net(x, genotype)`) or set once (`net.set_path(g)`) so that code calling `net(x)` (attacks,
indicators) runs that path. Inactive ops are never executed: no masking, no multiply by zero.
`extract(g)` copies the path's weights into a standalone network that computes the same function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from robnas.data.datasets import ImageData, batches
from robnas.genotype import Genotype
from robnas.models.builder import build, build_supernet
from robnas.models.samplers import (
    SAMPLERS,
    PathSampler,
    UniformDensitySampler,
    UniformOpSampler,
    make_sampler,
)
from robnas.space.search_space import SearchSpace, cell_space, get_space

__all__ = [
    "SAMPLERS",
    "PathSampler",
    "Supernet",
    "UniformDensitySampler",
    "UniformOpSampler",
    "make_sampler",
    "recalibrate",
    "recalibrate_bn",
]


class Supernet(nn.Module):
    def __init__(
        self,
        space: SearchSpace | str,
        macro: dict[str, Any] | None = None,
        dataset: str = "cifar10",
        *,
        size: str | None = None,
    ) -> None:
        super().__init__()
        self.space = cell_space(get_space(space) if isinstance(space, str) else space)
        self.macro = self.space.resolve_macro(size, **(macro or {}))
        self.dataset = dataset
        self.net = build_supernet(self.space, self.macro, dataset)
        self.path: Genotype | None = None

    def set_path(self, genotype: Genotype | None) -> None:
        """Fix the path that `forward(x)` runs (None: every call must pass a genotype)."""
        if genotype is not None:
            self.space.validate(genotype, self.macro)
        self.path = genotype

    @contextlib.contextmanager
    def using(self, genotype: Genotype) -> Iterator[Supernet]:
        """Run `genotype` inside the block, then restore the previous path."""
        previous = self.path
        self.set_path(genotype)
        try:
            yield self
        finally:
            self.path = previous

    def forward(self, x: torch.Tensor, genotype: Genotype | None = None) -> torch.Tensor:
        g = genotype if genotype is not None else self.path
        if g is None:
            raise ValueError("no active path: call set_path(genotype) or pass forward(x, genotype)")
        return self.net(x, g)  # type: ignore[no-any-return]

    def extract(self, genotype: Genotype) -> nn.Module:
        """A standalone network of `genotype` holding copies of the supernet's weights and
        BatchNorm statistics (its state dict keys are a subset of the supernet's)."""
        model = build(self.space, genotype, self.macro, self.dataset)
        source = self.net.state_dict()
        target = model.state_dict()
        missing = [k for k in target if k not in source]
        if missing:
            raise ValueError(
                f"supernet lacks {len(missing)} weights of the path, e.g. {missing[0]}"
            )
        model.load_state_dict({k: source[k] for k in target})
        model.to(next(self.net.parameters()).device)
        return model


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, Any]] | Iterable[torch.Tensor],
    genotype: Genotype | None = None,
    n_batches: int = 4,
) -> int:
    """Re-estimate BatchNorm running statistics for one path with inherited weights.

    Resets the statistics, forwards `n_batches` batches in train mode with a cumulative average
    (momentum=None), no gradients. BatchNorms the path does not use keep their old statistics.
    Momentum and train/eval modes are restored. Returns the number of batches used.
    """
    norms = _batch_norms(model)
    saved = [
        (m, m.momentum, {k: b.clone() for k, b in m.named_buffers(recurse=False)}) for m in norms
    ]
    modes = [(m, m.training) for m in model.modules()]
    used = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for batch in batches:
            if used >= n_batches:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            if genotype is not None:
                model(images, genotype)
            else:
                model(images)
            used += 1
    finally:
        for m, momentum, buffers in saved:
            m.momentum = momentum
            if int(m.num_batches_tracked) == 0:  # type: ignore[arg-type]
                # the path never ran this BatchNorm: keep its old statistics
                for k, b in m.named_buffers(recurse=False):
                    b.copy_(buffers[k])
        for module, mode in modes:
            module.training = mode
    return used


def recalibrate(
    model: nn.Module,
    data: ImageData,
    n_batches: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    genotype: Genotype | None = None,
) -> None:
    """`recalibrate_bn` on `n_batches` batches of `data` shuffled by `generator` (0: keep the
    statistics). Shuffled because a split read from class folders is in class order: its first
    batches would each be one class."""
    if n_batches > 0:
        stream = batches(data, batch_size, shuffle=True, generator=generator, device=device)
        recalibrate_bn(model, stream, genotype, n_batches=n_batches)
