"""FSP distance (RobNet, finding 3): how much adversarial noise changes each cell's feature flow.

For cell l, the FSP matrix (Yim et al. 2017) between its input F_in (c_in, h, w) and output
F_out (c_out, h, w) is G_l = (1/(h*w)) * sum over positions of F_in (x) F_out, a (c_in, c_out)
matrix per example. RobNet's FSP loss of a cell is the L2 loss between G on clean inputs x and on
adversarial inputs x': (1/N) sum_x ||G_l(x) - G_l(x')||_2^2 (squared Frobenius norm, summed over
the matrix entries; `fsp_reduction="mean"` divides by c_in*c_out). Lower is more robust; RobNet
found the correlation in the deeper cells, so `fsp_dist` averages the last third by default.

Choices made here: a DARTS cell's input is its s1 argument, the previous cell's output (s0 is
two cells back); an NB201 cell's input is its only argument. In a reduction cell the input has
twice the output's resolution, so it is average-pooled to the output's size (adaptive average
pooling: the mean over each 2x2 block) before G is formed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import frozen_model
from robnas.attacks.pgd import PGD
from robnas.errors import ConfigError
from robnas.indicators.base import IndicatorConfig, check_batch, model_device
from robnas.models.network import DartsCell, NB201Cell

# (cell class, index of its input among the positional args, its keyword name)
_CELL_INPUTS: tuple[tuple[type[nn.Module], int, str], ...] = (
    (DartsCell, 1, "s1"),
    (NB201Cell, 0, "x"),
)


def find_cells(model: nn.Module) -> list[tuple[nn.Module, int, str]]:
    """The model's cells in layer order, each with where its input sits in the call."""
    found = []
    for module in model.modules():
        for cls, index, name in _CELL_INPUTS:
            if isinstance(module, cls):
                found.append((module, index, name))
    if not found:
        raise ConfigError(
            f"{type(model).__name__} has no search-space cells; FSP needs a network built "
            "from a genotype (space.build or supernet.extract)"
        )
    return found


def fsp_matrix(f_in: Tensor, f_out: Tensor) -> Tensor:
    """G (N, c_in, c_out) = mean over positions of the outer product of the channel vectors."""
    if f_in.shape[-2:] != f_out.shape[-2:]:
        f_in = F.adaptive_avg_pool2d(f_in, (int(f_out.shape[-2]), int(f_out.shape[-1])))
    h, w = f_out.shape[-2:]
    return torch.einsum("nihw,njhw->nij", f_in, f_out) / (h * w)


@contextlib.contextmanager
def capture_cells(model: nn.Module) -> Iterator[list[tuple[Tensor, Tensor] | None]]:
    """Record (input, output) of every cell during forward passes inside the block."""
    cells = find_cells(model)
    store: list[tuple[Tensor, Tensor] | None] = [None] * len(cells)

    def make_hook(k: int, index: int, name: str) -> Any:
        def hook(
            module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
        ) -> None:
            f_in = args[index] if len(args) > index else kwargs[name]
            store[k] = (f_in.detach(), out.detach())

        return hook

    handles = [
        cell.register_forward_hook(make_hook(k, index, name), with_kwargs=True)
        for k, (cell, index, name) in enumerate(cells)
    ]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def fsp_matrices(model: nn.Module, images: Tensor) -> list[Tensor]:
    """Per cell, the FSP matrices (N, c_in, c_out) of `images` (eval mode, no gradients)."""
    with frozen_model(model), torch.no_grad(), capture_cells(model) as store:
        model(images)
    if any(s is None for s in store):
        raise ConfigError("some cells did not run in the forward pass; cannot form FSP matrices")
    return [fsp_matrix(f_in, f_out) for f_in, f_out in store]  # type: ignore[misc]


def fsp_distance(g_clean: Tensor, g_adv: Tensor, reduction: str = "sum") -> Tensor:
    """Per example ||G - G'||^2 (sum over entries; "mean" divides by the entry count)."""
    sq = (g_clean - g_adv).pow(2).flatten(1)
    return sq.sum(1) if reduction == "sum" else sq.mean(1)


def deep_cells(n_cells: int, cfg: IndicatorConfig) -> list[int]:
    """The cells that make up `fsp_dist`: cfg.fsp_cells, else the last fsp_deep_fraction."""
    if cfg.fsp_cells is not None:
        bad = [c for c in cfg.fsp_cells if not -n_cells <= c < n_cells]
        if bad or not cfg.fsp_cells:
            raise ConfigError(f"fsp_cells {list(cfg.fsp_cells)} must index the {n_cells} cells")
        return sorted({c % n_cells for c in cfg.fsp_cells})
    count = max(1, math.ceil(n_cells * cfg.fsp_deep_fraction))
    return list(range(n_cells - count, n_cells))


def fsp_cell_distances(
    model: nn.Module, images: Tensor, labels: Tensor, cfg: IndicatorConfig
) -> Tensor:
    """RobNet's FSP loss of every cell, (n_cells,): mean over examples of ||G(x) - G(x')||^2."""
    check_batch(images, labels)
    device = model_device(model)
    attack = PGD(eps=cfg.eps, alpha=cfg.alpha, steps=cfg.attack_steps, seed=cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    total: Tensor | None = None
    for start in range(0, images.shape[0], cfg.batch_size):
        x = images[start : start + cfg.batch_size].to(device)
        y = labels[start : start + cfg.batch_size].to(device)
        adv = attack(model, x, y, generator=generator)
        clean_g, adv_g = fsp_matrices(model, x), fsp_matrices(model, adv)
        dist = torch.stack(
            [fsp_distance(c, a, cfg.fsp_reduction).sum() for c, a in zip(clean_g, adv_g)]
        )
        total = dist if total is None else total + dist
    if total is None:  # unreachable after check_batch; keeps the type exact
        raise ValueError("an indicator needs at least one image")
    return total / images.shape[0]


def fsp_dist(
    model: nn.Module, images: Tensor, labels: Tensor, *, cfg: IndicatorConfig
) -> dict[str, float]:
    """`fsp_dist` (mean over the deeper cells) and `fsp_dist_cell{k}` for every cell k."""
    per_cell = fsp_cell_distances(model, images, labels, cfg).tolist()
    deep = deep_cells(len(per_cell), cfg)
    out = {"fsp_dist": sum(per_cell[k] for k in deep) / len(deep)}
    out.update({f"fsp_dist_cell{k}": v for k, v in enumerate(per_cell)})
    return out
