"""A configurable three-stage residual network for CIFAR (RobustWRN, RobustResNet).

`MacroConfig` says everything: per-stage depth (blocks) and widening factor, block type,
activation, squeeze-and-excitation. Stage i has base_channels[i] * widths[i] planes (16/32/64 x W,
as in WRN) at strides 1, 2, 2 after a 3x3 stem of 16 channels.

Block types:
  basic       ResNet-v1 post-activation basic block (conv-BN-act, conv-BN, add, act)
  preact      pre-activation basic block: what WRN, RobustWRN and RobustResNet call "basic block"
  bottleneck  pre-activation bottleneck, 4x expansion; `cardinality` groups (aggregated, ResNeXt)
              and `scales` hierarchical slices (Res2Net); see robust_resnet.py
  robust      RobustResBlock: bottleneck(cardinality 4, base_width 10, scales 8), residual SE
SE: none, standard (SE-ResNet: shortcut + se(out)), residual (shortcut + out + se(bn(out))).

    build_macro({"depths": [14, 14, 7], "widths": [5, 7, 3], "block": "robust"})  # RobustResNet-A1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from robnas.errors import ConfigError
from robnas.genotype import MACRO_BLOCKS, SE_MODES
from robnas.models.layers import (
    ACTIVATIONS,
    ResidualMerge,
    init_weights,
    make_activation,
    normalized,
    projection,
)
from robnas.models.robust_resnet import EXPANSION, PLAIN_BOTTLENECK, ROBUST_BLOCK, BottleneckBlock

BLOCKS = MACRO_BLOCKS
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class MacroConfig:
    """One macro network. None for cardinality/base_width/scales/se/se_reduction means the block's
    default (robust: 4/10/8/residual/64; bottleneck: 1/160/1/none/16; basic, preact: none/16)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    block: str = "preact"
    activation: str = "relu"
    se: str | None = None
    se_reduction: int | None = None
    cardinality: int | None = None
    base_width: int | None = None
    scales: int | None = None
    stem: int = 16
    base_channels: tuple[int, ...] = (16, 32, 64)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "base_channels", tuple(int(c) for c in self.base_channels))
        n = len(self.base_channels)
        if len(self.depths) != n or len(self.widths) != n:
            raise ConfigError(
                f"give {n} depths and {n} widths, got {self.depths} and {self.widths}"
            )
        if min(self.depths) < 1 or min(self.widths) < 1:
            raise ConfigError(f"depths and widths must be >= 1, got {self.depths}, {self.widths}")
        if self.block not in BLOCKS:
            raise ConfigError(f"unknown block {self.block!r}; known: {', '.join(BLOCKS)}")
        if self.activation not in ACTIVATIONS:
            known = ", ".join(sorted(ACTIVATIONS))
            raise ConfigError(f"unknown activation {self.activation!r}; known: {known}")
        if self.se is not None and self.se not in SE_MODES:
            raise ConfigError(f"unknown se {self.se!r}; known: {', '.join(SE_MODES)}")
        if self.block in ("basic", "preact") and any(
            v is not None for v in (self.cardinality, self.base_width, self.scales)
        ):
            raise ConfigError("cardinality, base_width and scales apply to bottleneck blocks only")

    @property
    def block_options(self) -> dict[str, Any]:
        """The block's keyword arguments with defaults filled in."""
        opts: dict[str, Any] = {"se": "none", "se_reduction": 16}
        if self.block == "robust":
            opts.update(ROBUST_BLOCK)
        elif self.block == "bottleneck":
            opts.update(PLAIN_BOTTLENECK)
        given = {
            "se": self.se,
            "se_reduction": self.se_reduction,
            "cardinality": self.cardinality,
            "base_width": self.base_width,
            "scales": self.scales,
        }
        opts.update({k: v for k, v in given.items() if v is not None})
        return opts

    @property
    def planes(self) -> tuple[int, ...]:
        return tuple(c * w for c, w in zip(self.base_channels, self.widths, strict=True))

    @property
    def out_channels(self) -> tuple[int, ...]:
        mult = EXPANSION if self.block in ("bottleneck", "robust") else 1
        return tuple(p * mult for p in self.planes)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MacroConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown macro keys {unknown}; known: {', '.join(sorted(known))}")
        if "depths" not in data or "widths" not in data:
            raise ConfigError("a macro config needs 'depths' and 'widths' (one per stage)")
        return cls(**dict(data))


class BasicBlock(nn.Module):
    """ResNet-v1 basic block: act(bn(conv(act(bn(conv(x))))) + shortcut)."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, *, activation: str, se: str, se_reduction: int
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = projection(c_in, c_out, stride, bn=True)
        self.merge = ResidualMerge(c_out, se, se_reduction)
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.act2(self.merge(out, shortcut))


class PreActBlock(nn.Module):
    """Pre-activation basic block (WRN); the 1x1 shortcut conv takes the activated input."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, *, activation: str, se: str, se_reduction: int
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.act1 = make_activation(activation)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = projection(c_in, c_out, stride)
        self.merge = ResidualMerge(c_out, se, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return self.merge(out, shortcut)


def make_block(cfg: MacroConfig, c_in: int, planes: int, stride: int) -> nn.Module:
    opts = cfg.block_options
    if cfg.block in ("bottleneck", "robust"):
        return BottleneckBlock(c_in, planes, stride, activation=cfg.activation, **opts)
    cls = BasicBlock if cfg.block == "basic" else PreActBlock
    return cls(c_in, planes, stride, activation=cfg.activation, se=opts["se"],
               se_reduction=opts["se_reduction"])  # fmt: skip


class MacroNet(nn.Module):
    """Stem, one nn.Sequential of blocks per stage (strides 1, 2, 2), head; fed normalised images."""

    def __init__(self, config: MacroConfig, num_classes: int = 10) -> None:
        super().__init__()
        self.config = config
        pre_activation = config.block != "basic"
        stem: list[nn.Module] = [nn.Conv2d(3, config.stem, 3, 1, 1, bias=False)]
        if not pre_activation:
            stem += [nn.BatchNorm2d(config.stem), make_activation(config.activation)]
        self.stem = nn.Sequential(*stem)
        c_in = config.stem
        stages = []
        for i, (depth, planes) in enumerate(zip(config.depths, config.planes, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(make_block(config, c_in, planes, stride if j == 0 else 1))
                c_in = config.out_channels[i]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # pre-activation stages end un-normalised: one BN-act before pooling
        head: list[nn.Module] = (
            [nn.BatchNorm2d(c_in), make_activation(config.activation)] if pre_activation else []
        )
        self.head = nn.Sequential(*head, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.stages(self.stem(x))))


def build_macro(
    config: MacroConfig | Mapping[str, Any],
    num_classes: int = 10,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
) -> nn.Sequential:
    """A MacroNet taking images in [0,1]: model[0] is Normalize, model.net the MacroNet."""
    cfg = config if isinstance(config, MacroConfig) else MacroConfig.from_dict(config)
    return normalized(MacroNet(cfg, num_classes), mean, std)


# Named networks. RobustScaling configurations A1..A4 (Huang et al. 2023, Table 2 "D&W" rows).
SCALED_A = {
    "a1": ((14, 14, 7), (5, 7, 3)),
    "a2": ((17, 17, 8), (7, 9, 4)),
    "a3": ((22, 22, 11), (8, 11, 5)),
    "a4": ((27, 28, 13), (10, 14, 6)),
}
NAMED_MACROS: dict[str, MacroConfig] = {
    # RobustWRN (Huang et al. 2021): WRN-34 with a shrunk last stage (16-320-640-512)
    "wrn34_r": MacroConfig((5, 5, 5), (20, 20, 8)),
    "wrn34_12": MacroConfig((5, 5, 5), (12, 12, 12)),
    "wrn46_14": MacroConfig((7, 7, 7), (14, 14, 14)),
    "wrn70_16": MacroConfig((11, 11, 11), (16, 16, 16)),
    **{f"wrn_{k}": MacroConfig(d, w, block="preact") for k, (d, w) in SCALED_A.items()},
    **{f"robust_resnet_{k}": MacroConfig(d, w, block="robust") for k, (d, w) in SCALED_A.items()},
}
# CIFAR-10 parameter counts as published (RobustResNet README; RobustWRN paper).
PUBLISHED_PARAMS: dict[str, float] = {
    "robust_resnet_a1": 19.2e6,
    "robust_resnet_a2": 39.0e6,
    "robust_resnet_a3": 75.9e6,
    "robust_resnet_a4": 147e6,
    "wrn34_r": 68.1e6,
    "wrn34_12": 66.5e6,
    "wrn46_14": 128e6,
    "wrn70_16": 267e6,
}
