"""Pre-activation bottleneck blocks with aggregated (grouped) and hierarchical (Res2Net-like)
3x3 convolutions, and RobustResBlock (Huang et al. 2023) as one setting of them.

Widths follow RobustResNet: a stage of `planes` outputs planes * 4 channels; each of the `scales`
hierarchical slices is (planes * base_width // 160) * cardinality channels wide, convolved in
`cardinality` groups. scales=1, cardinality=1, base_width=160 is the ResNet-v2 bottleneck.
"""

from __future__ import annotations

import torch
from torch import nn

from robnas.models.layers import ResidualMerge, make_activation, projection

EXPANSION = 4

# RobustResBlock = bottleneck(cardinality 4, base_width 10, scales 8) + residual SE (reduction 64).
ROBUST_BLOCK = {
    "cardinality": 4,
    "base_width": 10,
    "scales": 8,
    "se": "residual",
    "se_reduction": 64,
}
PLAIN_BOTTLENECK = {"cardinality": 1, "base_width": 160, "scales": 1}


def slice_width(planes: int, base_width: int, cardinality: int) -> int:
    return (planes * base_width // 160) * cardinality


class BottleneckBlock(nn.Module):
    """BN-act, 1x1 expand to scales slices, hierarchical grouped 3x3, 1x1 to planes*4, merge."""

    expansion = EXPANSION

    def __init__(
        self,
        c_in: int,
        planes: int,
        stride: int = 1,
        *,
        activation: str = "relu",
        cardinality: int = 1,
        base_width: int = 160,
        scales: int = 1,
        se: str = "none",
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        width = slice_width(planes, base_width, cardinality)
        if width < 1 or scales < 1 or cardinality < 1:
            raise ValueError(
                f"bottleneck of {planes} planes has no channels per slice "
                f"(base_width={base_width}, cardinality={cardinality}, scales={scales})"
            )
        c_out = planes * EXPANSION
        self.scales, self.stride = scales, stride
        self.bn1 = nn.BatchNorm2d(c_in)
        self.act = make_activation(activation)
        self.conv1 = nn.Conv2d(c_in, width * scales, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width * scales)
        # the last slice skips its conv (Res2Net); with one slice there is a single conv
        n_convs = max(1, scales - 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride, 1, groups=cardinality, bias=False)
            for _ in range(n_convs)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(n_convs))
        self.pool = nn.AvgPool2d(3, stride, 1) if stride > 1 and scales > 1 else None
        self.conv3 = nn.Conv2d(width * scales, c_out, 1, bias=False)
        self.shortcut = projection(c_in, c_out, stride)
        self.merge = ResidualMerge(c_out, se, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Both paths start from the pre-activated input (the reference code feeds the raw input
        # to conv1; the parameter count is the same).
        pre = self.act(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.act(self.bn2(self.conv1(pre)))
        if self.scales == 1:
            out = self.act(self.bns[0](self.convs[0](out)))
        else:
            xs = torch.chunk(out, self.scales, 1)
            ys: list[torch.Tensor] = []
            for s, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
                # a strided block cannot add a full-size slice to a halved one: plain split then
                inp = xs[s] if s == 0 or self.stride > 1 else xs[s] + ys[-1]
                ys.append(self.act(bn(conv(inp))))
            ys.append(xs[-1] if self.pool is None else self.pool(xs[-1]))
            out = torch.cat(ys, 1)
        return self.merge(self.conv3(out), shortcut)


def robust_res_block(
    c_in: int, planes: int, stride: int = 1, *, activation: str = "relu"
) -> BottleneckBlock:
    """RobustResBlock: the bottleneck with RobustResNet's published settings."""
    return BottleneckBlock(c_in, planes, stride, activation=activation, **ROBUST_BLOCK)  # type: ignore[arg-type]
