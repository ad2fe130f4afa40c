"""VGG-16 in CIFAR form (13 3x3 convs, 5 max-pools, one linear layer), with the switches of the
architectural-modification study: bn (default on), residual (off), se (off).

residual=on adds an identity skip around every conv whose input and output widths match (9 of 13);
se=on gates every conv's output with squeeze-and-excitation (reduction 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from robnas.models.layers import (
    SkipAdd,
    SqueezeExcite,
    conv_norm_act,
    init_weights,
    switched_factory,
)

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG_DEFAULTS = {"bn": True, "residual": False, "se": False}


class VGGLayer(nn.Module):
    """conv3x3 (bias, as in VGG) - BN - ReLU [- SE], optionally x + layer(x)."""

    def __init__(self, c_in: int, c_out: int, *, bn: bool, residual: bool, se: bool) -> None:
        super().__init__()
        self.body = conv_norm_act(c_in, c_out, 3, bn=bn, bias=True)
        self.se = SqueezeExcite(c_out) if se else None
        self.add = SkipAdd() if residual and c_in == c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.se is not None:
            out = self.se(out)
        return out if self.add is None else self.add(x, out)


class VGG(nn.Module):
    def __init__(
        self,
        cfg: Sequence[int | str] = VGG16,
        num_classes: int = 10,
        *,
        bn: bool = True,
        residual: bool = False,
        se: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(VGGLayer(c_in, int(v), bn=bn, residual=residual, se=se))
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


vgg16 = switched_factory(partial(VGG, VGG16))
