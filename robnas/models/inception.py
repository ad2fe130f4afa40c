"""A CIFAR-sized Inception: GoogLeNet (Szegedy et al. 2015) with a 3x3 stride-1 stem and two
max-pools (32 -> 16 -> 8), the 5x5 branch as two 3x3 convs, BN after every conv (Inception-v2
style), global average pooling and one linear layer.

Switches of the architectural-modification study: bn (default on), residual (off), se (off).
residual=on adds a shortcut around every Inception module (identity when widths match, else a
1x1 projection); se=on gates every module's output with squeeze-and-excitation (reduction 16).
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

INCEPTION_DEFAULTS = {"bn": True, "residual": False, "se": False}

# (n1x1, n3x3 reduce, n3x3, n5x5 reduce, n5x5, pool proj) per module; "M" is a 3x3/2 max-pool.
GOOGLENET: tuple[tuple[int, ...] | str, ...] = (
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    "M",
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    "M",
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
)


class InceptionModule(nn.Module):
    def __init__(
        self, c_in: int, widths: tuple[int, ...], *, bn: bool, residual: bool, se: bool
    ) -> None:
        super().__init__()
        n1, r3, n3, r5, n5, pool = widths
        self.b1 = conv_norm_act(c_in, n1, 1, bn=bn)
        self.b3 = nn.Sequential(conv_norm_act(c_in, r3, 1, bn=bn), conv_norm_act(r3, n3, 3, bn=bn))
        self.b5 = nn.Sequential(
            conv_norm_act(c_in, r5, 1, bn=bn),
            conv_norm_act(r5, n5, 3, bn=bn),
            conv_norm_act(n5, n5, 3, bn=bn),
        )
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_norm_act(c_in, pool, 1, bn=bn))
        self.out_channels = n1 + n3 + n5 + pool
        self.se = SqueezeExcite(self.out_channels) if se else None
        self.add = SkipAdd() if residual else None
        self.shortcut: nn.Module | None = None
        if residual and c_in != self.out_channels:
            self.shortcut = conv_norm_act(c_in, self.out_channels, 1, bn=bn, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)
        if self.se is not None:
            out = self.se(out)
        if self.add is None:
            return out
        return self.add(x if self.shortcut is None else self.shortcut(x), out)


class Inception(nn.Module):
    def __init__(
        self, num_classes: int = 10, *, bn: bool = True, residual: bool = False, se: bool = False
    ) -> None:
        super().__init__()
        self.stem = conv_norm_act(3, 192, 3, bn=bn)
        layers: list[nn.Module] = []
        c_in = 192
        for spec in GOOGLENET:
            if spec == "M":
                layers.append(nn.MaxPool2d(3, 2, 1))
            else:
                assert not isinstance(spec, str)
                module = InceptionModule(c_in, spec, bn=bn, residual=residual, se=se)
                layers.append(module)
                c_in = module.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(self.stem(x))), 1))


inception = switched_factory(Inception)
