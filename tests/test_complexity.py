from __future__ import annotations

import torch
from torch import nn

from robnas.indicators import count_flops, count_params
from robnas.models.baselines import BASELINES


def _hand_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8*32*32 outputs x 3*9 MACs = 221,184
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),  # 8*16*16 x 9 = 18,432
        nn.Conv2d(8, 16, 1, bias=False),  # 16*16*16 x 8 = 32,768
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(16, 10),  # 160
    )


HAND_MACS = 221_184 + 18_432 + 32_768 + 160
HAND_PARAMS = (3 * 8 * 9 + 8) + 16 + 8 * 9 + 8 * 16 + (16 * 10 + 10)


def test_hand_computed_macs_and_params() -> None:
    net = _hand_net()
    assert count_flops(net) == HAND_MACS
    assert count_flops(net, (2, 3, 32, 32)) == 2 * HAND_MACS
    assert count_params(net) == HAND_PARAMS


def test_params_skip_frozen_and_count_shared_once() -> None:
    net = _hand_net()
    net[0].requires_grad_(False)
    assert count_params(net) == HAND_PARAMS - (3 * 8 * 9 + 8)
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, shared)) == 20


def test_modes_and_batchnorm_statistics_are_untouched() -> None:
    net = _hand_net()
    net.train()
    net[7].eval()  # a mixed state must come back exactly
    before = net[1].running_mean.clone(), int(net[1].num_batches_tracked)
    count_flops(net)
    assert [m.training for m in net] == [True] * 7 + [False, True]
    assert torch.equal(net[1].running_mean, before[0])
    assert int(net[1].num_batches_tracked) == before[1]


def test_meta_device_model_matches_cpu_model() -> None:
    with torch.device("meta"):
        meta = _hand_net()
    assert count_flops(meta) == HAND_MACS


def test_resnet18_cifar_macs_match_published() -> None:
    with torch.device("meta"):
        model = BASELINES.get("resnet18")(10, (0.5,) * 3, (0.25,) * 3)
    macs = count_flops(model)
    assert abs(macs - 556e6) / 556e6 < 0.01  # kuangliu/pytorch-cifar ResNet18: 0.56 G MACs
