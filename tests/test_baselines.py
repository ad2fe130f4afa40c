from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.errors import UnknownName
from robnas.models.baselines import BASELINES, WideResNet
from robnas.ops import Normalize

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

# Published CIFAR-10 parameter counts (kuangliu/pytorch-cifar; Madry / TRADES WRN-28-10).
GOLDEN_PARAMS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "wrn28_10": 36_479_194,
    "densenet121": 6_956_298,
}
# channels of the last feature map and its side for a 32x32 input (CIFAR form: 32 -> 4 or 8)
LAST_FEATURES = {
    "resnet18": (512, 4),
    "resnet50": (2048, 4),
    "wrn28_10": (640, 8),
    "densenet121": (1024, 4),
}


def _meta(name: str, num_classes: int = 10) -> nn.Module:
    with torch.device("meta"):
        return BASELINES.get(name)(num_classes, MEAN, STD)


def test_registry_lists_the_four_baselines() -> None:
    assert BASELINES.names() == sorted(GOLDEN_PARAMS)
    with pytest.raises(UnknownName, match="resnet18"):
        BASELINES.get("vgg16")


@pytest.mark.parametrize("name", sorted(GOLDEN_PARAMS))
def test_golden_parameter_count(name: str) -> None:
    model = _meta(name)
    assert sum(p.numel() for p in model.parameters()) == GOLDEN_PARAMS[name]


@pytest.mark.parametrize("name", sorted(GOLDEN_PARAMS))
def test_cifar_form_and_normalize_first(name: str) -> None:
    model = _meta(name, num_classes=7)
    first = next(iter(model.children()))
    assert isinstance(first, Normalize)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    shapes: list[torch.Size] = []
    last_bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    last_bn.register_forward_hook(lambda _m, _i, out: shapes.append(out.shape))
    out = model(torch.empty(2, 3, 32, 32, device="meta"))
    assert out.shape == (2, 7)
    channels, side = LAST_FEATURES[name]
    assert shapes[-1] == (2, channels, side, side)


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_forward_backward_on_cpu(name: str) -> None:
    model = BASELINES.get(name)(10, MEAN, STD)
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # Normalize really runs first: the inner net on pre-normalised input gives the same logits.
    model.eval()
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.net((x - mean) / std), atol=1e-5)


def test_wide_resnet_small_runs_and_rejects_bad_depth() -> None:
    net = WideResNet(depth=10, width=2, num_classes=5)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    # depth 10 = one block per stage; the width-changing blocks carry a 1x1 shortcut
    assert [b.shortcut is not None for b in (net.block1[0], net.block2[0], net.block3[0])] == [
        True,
        True,
        True,
    ]
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNet(depth=27)
