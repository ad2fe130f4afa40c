"""MobileNetV2 and MobileNetV3-Small in CIFAR form (stride-1 stem; 32 -> 4 over the network),
with the switches of the architectural-modification study.

mobilenet_v2: bn on, residual on, se off (se=on adds SE after each depthwise conv, hidden width
c_in / 4 as in EfficientNet).
mobilenet_v3 (the Small variant): bn on, residual on, se on (SE where the paper's table puts it;
se=off removes them). residual=off drops the identity skips of stride-1, equal-width blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.models.layers import (
    SkipAdd,
    SqueezeExcite,
    conv_norm_act,
    init_weights,
    switched_factory,
)

V2_DEFAULTS = {"bn": True, "residual": True, "se": False}
V3_DEFAULTS = {"bn": True, "residual": True, "se": True}

# MobileNetV2 (expansion, out, repeats, stride); CIFAR form: stride 1 in the first two stages.
V2_CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
# MobileNetV3-Small (kernel, expanded, out, SE, activation, stride); the first block at stride 1.
V3_SMALL = ((3, 16, 16, True, "relu", 1), (3, 72, 24, False, "relu", 2),
            (3, 88, 24, False, "relu", 1), (5, 96, 40, True, "hswish", 2),
            (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
            (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1),
            (5, 288, 96, True, "hswish", 2), (5, 576, 96, True, "hswish", 1),
            (5, 576, 96, True, "hswish", 1))  # fmt: skip


def _divisible(v: float, divisor: int = 8) -> int:
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class InvertedResidual(nn.Module):
    """1x1 expand - depthwise kxk - [SE] - 1x1 project; identity skip when stride 1 and widths match."""

    def __init__(
        self,
        c_in: int,
        expanded: int,
        c_out: int,
        *,
        kernel: int = 3,
        stride: int = 1,
        act: str = "relu6",
        bn: bool = True,
        residual: bool = True,
        se: SqueezeExcite | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(conv_norm_act(c_in, expanded, 1, bn=bn, act=act))
        layers.append(
            conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, bn=bn, act=act)
        )
        if se is not None:
            layers.append(se)
        layers.append(conv_norm_act(expanded, c_out, 1, bn=bn, act=None))
        self.body = nn.Sequential(*layers)
        self.add = SkipAdd() if residual and stride == 1 and c_in == c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out if self.add is None else self.add(x, out)


class MobileNetV2(nn.Module):
    def __init__(
        self, num_classes: int = 10, *, bn: bool = True, residual: bool = True, se: bool = False
    ) -> None:
        super().__init__()
        self.stem = conv_norm_act(3, 32, 3, bn=bn, act="relu6")
        blocks: list[nn.Module] = []
        c_in = 32
        for t, c, n, s in V2_CFG:
            for i in range(n):
                hidden = c_in * t
                # EfficientNet's SE for inverted residuals: a quarter of the block's input width
                gate = SqueezeExcite(hidden, bias=True, hidden=max(1, c_in // 4)) if se else None
                blocks.append(InvertedResidual(c_in, hidden, c, stride=s if i == 0 else 1,
                                               bn=bn, residual=residual, se=gate))  # fmt: skip
                c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_norm_act(c_in, 1280, 1, bn=bn, act="relu6")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1280, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.head(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(out, 1))


class MobileNetV3Small(nn.Module):
    def __init__(
        self, num_classes: int = 10, *, bn: bool = True, residual: bool = True, se: bool = True
    ) -> None:
        super().__init__()
        self.stem = conv_norm_act(3, 16, 3, bn=bn, act="hswish")
        blocks: list[nn.Module] = []
        c_in = 16
        for k, exp, c, use_se, act, s in V3_SMALL:
            gate = None
            if se and use_se:
                gate = SqueezeExcite(
                    exp, 4, bias=True, gate=nn.Hardsigmoid, hidden=_divisible(exp / 4)
                )
            blocks.append(InvertedResidual(c_in, exp, c, kernel=k, stride=s, act=act, bn=bn,
                                           residual=residual, se=gate))  # fmt: skip
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_norm_act(c_in, 576, 1, bn=bn, act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1024, num_classes)
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.head(self.blocks(self.stem(x))))
        return self.classifier(torch.flatten(out, 1))


mobilenet_v2 = switched_factory(MobileNetV2)


mobilenet_v3 = switched_factory(MobileNetV3Small)
