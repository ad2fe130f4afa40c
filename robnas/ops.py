"""Operations by their paper names, and the Normalize layer that starts every model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from robnas.registry import Registry


class Normalize(nn.Module):
    """Per-channel (x - mean) / std; models take images in [0,1] and normalise inside."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    mean: torch.Tensor
    std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# An op is built as fn(C, stride, affine) -> nn.Module mapping C channels to C channels; stride 2
# halves the resolution. BN inside RobNet cells is affine=False; NAS-Bench-201 uses affine=True.
OpFactory = Callable[[int, int, bool], nn.Module]
OPS: Registry[OpFactory] = Registry("operation")


class ReLUConvBN(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """DARTS separable conv: (ReLU, depthwise kxk, pointwise 1x1, BN) twice; stride on the first."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halve resolution with two offset stride-2 1x1 convs, so no pixel is skipped."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)


def _avg_pool(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


def _max_pool(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.MaxPool2d(3, stride=stride, padding=1)


OPS.add("skip_connect", _skip)
OPS.add("sep_conv_3x3", lambda c, s, a: SepConv(c, 3, s, a))
OPS.add("sep_conv_5x5", lambda c, s, a: SepConv(c, 5, s, a))
OPS.add("nor_conv_1x1", lambda c, s, a: ReLUConvBN(c, c, 1, s, 0, a))
OPS.add("nor_conv_3x3", lambda c, s, a: ReLUConvBN(c, c, 3, s, 1, a))
OPS.add("avg_pool_3x3", _avg_pool)
OPS.add("max_pool_3x3", _max_pool)


def make_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    return OPS.get(name)(channels, stride, affine)
