"""The shape of an indicator: a pure scoring function, its direction, and its settings.

An indicator is `fn(model, images, labels, *, cfg) -> float | dict[str, float]`. It keeps no
state: the model's train/eval modes, parameters, `requires_grad` flags and buffers are as before,
and gradients are taken w.r.t. the input, or w.r.t. parameters with `torch.autograd.grad`
(never accumulated into `.grad`). Randomness comes from `cfg.seed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robnas.errors import ConfigError
from robnas.registry import Registry
from robnas.specs import DEFAULT_EPS

IndicatorValue = float | dict[str, float]
IndicatorFn = Callable[..., IndicatorValue]

JAC_METHODS = ("auto", "exact", "random")
FSP_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class IndicatorConfig:
    """Settings shared by the indicators (all have defaults; a dict with these keys works too).

    eps/attack_steps/alpha: the PGD attack that makes FSP's adversarial inputs (RobNet: PGD-7,
    eps 8/255, step eps/4). fsp_cells: the cells whose distances make `fsp_dist` (default the last
    `fsp_deep_fraction` of them). fsp_reduction: "sum" is RobNet's squared L2 distance of the FSP
    matrices, "mean" divides it by the matrix size. jac_method: "exact" (one backward pass per
    class), "random" (`jac_projections` Gaussian projections), "auto" (exact when that is no
    more passes than the projections). hessian_iterations: power-iteration steps of
    `hessian_eig` (it stops earlier once converged). zico_batches: the minibatches (>= 2) the
    images are split into for `zico`'s gradient statistics. eval_attack: the registered attack of `robust_acc`.
    """

    eps: float = DEFAULT_EPS
    attack_steps: int = 7
    alpha: float | None = None
    fsp_cells: tuple[int, ...] | None = None
    fsp_deep_fraction: float = 1 / 3
    fsp_reduction: str = "sum"
    jac_method: str = "auto"
    jac_projections: int = 10
    hessian_iterations: int = 20
    zico_batches: int = 2
    eval_attack: str = "pgd20"
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"indicator eps must lie in [0, 1], got {self.eps}")
        if (
            min(self.attack_steps, self.batch_size, self.jac_projections, self.hessian_iterations)
            < 1
        ):
            raise ConfigError(
                "attack_steps, batch_size, jac_projections and hessian_iterations must be >= 1"
            )
        if self.zico_batches < 2:
            raise ConfigError(
                f"zico_batches must be >= 2 (a spread needs two), got {self.zico_batches}"
            )
        if not 0 < self.fsp_deep_fraction <= 1:
            raise ConfigError(f"fsp_deep_fraction must lie in (0, 1], got {self.fsp_deep_fraction}")
        if self.fsp_reduction not in FSP_REDUCTIONS:
            raise ConfigError(f"fsp_reduction must be one of {FSP_REDUCTIONS}")
        if self.jac_method not in JAC_METHODS:
            raise ConfigError(f"jac_method must be one of {JAC_METHODS}")
        if self.fsp_cells is not None:
            object.__setattr__(self, "fsp_cells", tuple(int(c) for c in self.fsp_cells))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> IndicatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown indicator settings {unknown}; known: {', '.join(sorted(known))}"
            )
        return cls(**dict(values))


def as_config(cfg: IndicatorConfig | Mapping[str, Any] | None) -> IndicatorConfig:
    if cfg is None:
        return IndicatorConfig()
    if isinstance(cfg, IndicatorConfig):
        return cfg
    return IndicatorConfig.from_mapping(cfg)


@dataclass(frozen=True)
class Indicator:
    """A registered indicator. direction: +1 if higher predicts more robust, -1 if lower does."""

    name: str
    fn: IndicatorFn
    direction: int

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {self.direction}")

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        cfg: IndicatorConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, float]:
        """Run the indicator; a bare float comes back as {name: value}."""
        value = self.fn(model, images, labels, cfg=as_config(cfg))
        if isinstance(value, dict):
            return {k: float(v) for k, v in value.items()}
        return {self.name: float(value)}


INDICATORS: Registry[Indicator] = Registry("indicator")


def check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected images (N,C,H,W) and labels (N,), got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError("an indicator needs at least one image")
    if not images.is_floating_point():
        raise ValueError("images must be float tensors in [0, 1]; call .floats() on uint8 data")


def model_device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")
