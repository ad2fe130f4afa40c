"""Baseline CNNs in CIFAR form (3x3 stride-1 stem, no max-pool), each starting with Normalize.

ResNet and DenseNet reuse torchvision's blocks with the ImageNet stem swapped, which gives exactly
the CIFAR models of kuangliu/pytorch-cifar; WideResNet follows Madry et al. / TRADES.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models import densenet121 as tv_densenet121
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import resnet50 as tv_resnet50

from robnas.ops import Normalize
from robnas.registry import Registry

BaselineFn = Callable[[int, Sequence[float], Sequence[float]], nn.Module]
BASELINES: Registry[BaselineFn] = Registry("baseline")


def with_normalize(net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """model[0] is Normalize, model[1] (also model.net) the network fed normalised images."""
    return nn.Sequential(OrderedDict(normalize=Normalize(mean, std), net=net))


def _cifar_resnet(net: nn.Module) -> nn.Module:
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    return net


@BASELINES.register("resnet18")
def resnet18(num_classes: int, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    return with_normalize(_cifar_resnet(tv_resnet18(num_classes=num_classes)), mean, std)


@BASELINES.register("resnet50")
def resnet50(num_classes: int, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    return with_normalize(_cifar_resnet(tv_resnet50(num_classes=num_classes)), mean, std)


@BASELINES.register("densenet121")
def densenet121(num_classes: int, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    # growth 32, blocks (6, 12, 24, 16); the CIFAR stem is a bare 3x3 conv (no BN/ReLU/pool).
    net = tv_densenet121(num_classes=num_classes)
    features = net.features
    features.conv0 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(features.conv0.weight)
    features.norm0 = nn.Identity()
    features.relu0 = nn.Identity()
    features.pool0 = nn.Identity()
    return with_normalize(net, mean, std)


class _WideBlock(nn.Module):
    """Pre-activation basic block; the 1x1 shortcut conv takes the activated input when shapes change."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal = in_planes == out_planes and stride == 1
        self.shortcut = (
            None
            if self.equal
            else nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = nn.functional.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        skip = x if self.shortcut is None else self.shortcut(act)
        return out + skip


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis 2016) as used by Madry et al. and TRADES."""

    def __init__(
        self, depth: int = 28, width: int = 10, num_classes: int = 10, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        channels = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, channels[0], 3, stride=1, padding=1, bias=False)
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            blocks = [
                _WideBlock(channels[i] if j == 0 else channels[i + 1], channels[i + 1],
                           stride if j == 0 else 1, drop_rate)
                for j in range(n)
            ]  # fmt: skip
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.pool(self.relu(self.bn(out)))
        return self.fc(torch.flatten(out, 1))


@BASELINES.register("wrn28_10")
def wrn28_10(num_classes: int, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    return with_normalize(WideResNet(28, 10, num_classes, drop_rate=0.0), mean, std)
