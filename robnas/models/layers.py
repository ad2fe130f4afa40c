"""Small layers shared by the macro networks: activations and norms by name, squeeze-and-excitation,
and the residual add as a module so a network's skip connections can be counted and hooked."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from robnas.errors import ConfigError
from robnas.genotype import MACRO_ACTIVATIONS, SE_MODES
from robnas.ops import Normalize

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    # Not in place: a block's pre-activated input also feeds its shortcut.
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "hswish": nn.Hardswish,
    "relu6": nn.ReLU6,
}
if tuple(ACTIVATIONS) != MACRO_ACTIVATIONS:  # the grammar's names and the modules agree
    raise ImportError("robnas.genotype.MACRO_ACTIVATIONS must list ACTIVATIONS' names in order")


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; known: {known}") from None


def make_norm(channels: int, enabled: bool = True) -> nn.Module:
    """BatchNorm2d, or Identity when the study switches batch normalisation off."""
    return nn.BatchNorm2d(channels) if enabled else nn.Identity()


def conv_norm_act(
    c_in: int,
    c_out: int,
    kernel: int = 3,
    stride: int = 1,
    *,
    groups: int = 1,
    bn: bool = True,
    act: str | None = "relu",
    bias: bool | None = None,
) -> nn.Sequential:
    """Conv, BatchNorm (or Identity), activation (or none). Without BN the conv keeps a bias."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups,
                  bias=(not bn) if bias is None else bias),
        make_norm(c_out, bn),
    ]  # fmt: skip
    if act is not None:
        layers.append(make_activation(act))
    return nn.Sequential(*layers)


def normalized(net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """model[0] is Normalize, model.net the network fed normalised images (as in baselines.py)."""
    return nn.Sequential(OrderedDict(normalize=Normalize(mean, std), net=net))


def switched_factory(make: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A study network's factory `(num_classes, mean, std, *, bn, residual, se) -> model`:
    `make(num_classes, **switches)` behind Normalize (switches left out keep `make`'s defaults)."""

    def factory(
        num_classes: int, mean: Sequence[float], std: Sequence[float], **switches: bool
    ) -> nn.Module:
        return normalized(make(num_classes, **switches), mean, std)

    return factory


def projection(c_in: int, c_out: int, stride: int, *, bn: bool = False) -> nn.Module | None:
    """A residual block's shortcut: a strided 1x1 conv (then BN if `bn`) where the block changes
    the shape, else None (the identity)."""
    if stride == 1 and c_in == c_out:
        return None
    conv = nn.Conv2d(c_in, c_out, 1, stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out)) if bn else conv


class SkipAdd(nn.Module):
    """`a + b` for a residual connection; a module so tests and analyses can find every skip."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class SqueezeExcite(nn.Module):
    """Channel gating (Hu et al. 2018): x * gate(avgpool(x)), gate = FC-ReLU-FC-sigmoid."""

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        *,
        bias: bool = False,
        gate: Callable[[], nn.Module] = nn.Sigmoid,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        hidden = hidden or max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class ResidualMerge(nn.Module):
    """How a residual block joins its branch `out` and its `shortcut`, by SE mode:
    none: shortcut + out; standard (SE-ResNet): shortcut + se(out);
    residual (RobustResBlock): shortcut + out + se(bn(out))."""

    def __init__(self, channels: int, se: str = "none", reduction: int = 16) -> None:
        super().__init__()
        if se not in SE_MODES:
            raise ConfigError(f"unknown SE mode {se!r}; known: {', '.join(SE_MODES)}")
        self.mode = se
        self.bn = nn.BatchNorm2d(channels) if se == "residual" else None
        self.se = SqueezeExcite(channels, reduction) if se != "none" else None
        self.add = SkipAdd()

    def forward(self, out: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        if self.se is not None:
            out = self.se(out) if self.bn is None else out + self.se(self.bn(out))
        return self.add(shortcut, out)


def init_weights(model: nn.Module) -> None:
    """He-normal (fan_out) convolutions, unit BatchNorm, zero biases: the WRN/RobustResNet init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
