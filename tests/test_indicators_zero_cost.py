"""NASWOT and ZiCo against independent computations of their definitions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robnas import models
from robnas.errors import ConfigError
from robnas.indicators import INDICATORS, IndicatorConfig
from robnas.space.search_space import get_space


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)
    )


def _batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_naswot_is_the_log_determinant_of_the_relu_agreement_kernel() -> None:
    net = _mlp()
    x, y = _batch(5)
    # by hand: binary codes of both ReLUs, K[i, j] = units where images i and j agree
    h1 = net[1](net[0](x)).relu()
    h2 = net[3](h1).relu()
    codes = torch.cat([h1 > 0, h2 > 0], dim=1).numpy().astype(int)
    agree = (codes[:, None, :] == codes[None, :, :]).sum(-1).astype(float)
    expected = np.linalg.slogdet(agree)[1]
    got = INDICATORS.get("naswot")(net, x, y)["naswot"]
    assert got == pytest.approx(expected, rel=1e-9)
    assert INDICATORS.get("naswot").direction == 1


def test_naswot_of_identical_images_is_minus_infinity() -> None:
    x, y = _batch(1)
    got = INDICATORS.get("naswot")(_mlp(), x.repeat(3, 1, 1, 1), y.repeat(3))["naswot"]
    assert got == -math.inf  # every row of K equal: no distinct linear regions


def test_zico_matches_gradients_taken_by_backward_on_a_copy() -> None:
    net = _mlp(1)
    x, y = _batch(8, seed=2)
    grads: list[list[np.ndarray]] = []
    for xb, yb in ((x[0::2], y[0::2]), (x[1::2], y[1::2])):  # every other image
        twin = copy.deepcopy(net)
        F.cross_entropy(twin(xb), yb).backward()
        grads.append([m.weight.grad.numpy().ravel() for m in twin if isinstance(m, nn.Linear)])
    expected = 0.0
    for layer in zip(*grads):
        g = np.stack(layer).astype(np.float64)
        std, mean_abs = g.std(axis=0), np.abs(g).mean(axis=0)
        expected += math.log((mean_abs[std > 0] / std[std > 0]).sum())
    got = INDICATORS.get("zico")(net, x, y)["zico"]
    assert got == pytest.approx(expected, rel=1e-5)
    assert all(p.grad is None for p in net.parameters())


def test_zico_needs_two_batches_of_two() -> None:
    with pytest.raises(ConfigError, match="zico_batches"):
        IndicatorConfig(zico_batches=1)
    with pytest.raises(ValueError, match="2 images per batch"):
        INDICATORS.get("zico")(_mlp(), *_batch(3))


def test_both_score_real_cells_in_train_mode_and_leave_batchnorm_alone() -> None:
    space = get_space("nb201")
    macro = space.resolve_macro("tiny")
    g = space.sample(np.random.default_rng(0))
    net = models.build(space, g, macro, "cifar10").eval()
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 10
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    modes: list[bool] = []
    hooks = [m.register_forward_hook(lambda m, _i, _o: modes.append(m.training)) for m in norms]
    for name in ("naswot", "zico"):
        modes.clear()
        value = INDICATORS.get(name)(net, x, y)[name]
        assert math.isfinite(value)
        # every BatchNorm ran in train mode (batch statistics), though the net came in eval mode
        assert len(modes) >= len(norms) and all(modes), name
    for hook in hooks:
        hook.remove()
    assert not net.training
    assert all(torch.equal(v, stats[k]) for k, v in net.state_dict().items())
