"""Macro networks (wrn.py, robust_resnet.py): published parameter counts, every block type,
activation and SE mode trains a step, configs round-trip, and names resolve everywhere."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from robnas.cli import main
from robnas.errors import ConfigError
from robnas.models.layers import SkipAdd, SqueezeExcite
from robnas.models.resolve import resolve_arch
from robnas.models.wrn import (
    NAMED_MACROS,
    PUBLISHED_PARAMS,
    MacroConfig,
    MacroNet,
    build_macro,
)
from robnas.ops import Normalize

# Our counts of the basic-block RobustScaling networks (the paper's Table 2 prints 17.7M, 39.3M,
# 74.8M, 141M for these depths/widths; its 17.7M and 141M do not follow from them).
WRN_A_PARAMS = {"wrn_a1": 18_707_930, "wrn_a2": 38_323_482, "wrn_a3": 75_302_490,
                "wrn_a4": 147_291_738}  # fmt: skip


def _meta_params(cfg: MacroConfig) -> int:
    with torch.device("meta"):
        model = build_macro(cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_parameter_count_within_2_percent(name: str) -> None:
    ours = _meta_params(NAMED_MACROS[name])
    assert abs(ours - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name] < 0.02, ours


@pytest.mark.parametrize("name", sorted(WRN_A_PARAMS))
def test_wrn_a_parameter_counts(name: str) -> None:
    assert _meta_params(NAMED_MACROS[name]) == WRN_A_PARAMS[name]


def test_wrn34_r_shrinks_the_last_stage() -> None:
    cfg = NAMED_MACROS["wrn34_r"]
    assert cfg.out_channels == (320, 640, 512) and cfg.depths == (5, 5, 5)
    assert NAMED_MACROS["robust_resnet_a1"].out_channels == (320, 896, 768)  # 4x expansion


TINY = {"depths": (1, 2, 1), "widths": (1, 1, 1)}


@pytest.mark.parametrize("block", ["basic", "preact", "bottleneck", "robust"])
@pytest.mark.parametrize("activation", ["relu", "silu", "softplus"])
def test_every_block_and_activation_trains_a_step(block: str, activation: str) -> None:
    model = build_macro({**TINY, "block": block, "activation": activation}, num_classes=7)
    acts = {"relu": nn.ReLU, "silu": nn.SiLU, "softplus": nn.Softplus}
    assert any(isinstance(m, acts[activation]) for m in model.modules())
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("se", ["none", "standard", "residual"])
def test_se_modes_change_the_blocks(se: str) -> None:
    model = build_macro({**TINY, "block": "preact", "se": se})
    blocks = sum(TINY["depths"])
    n_se = sum(isinstance(m, SqueezeExcite) for m in model.modules())
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert n_se == (0 if se == "none" else blocks)
    # 2 BN per pre-activation block + the head's; residual SE adds one BN per block
    assert n_bn == 2 * blocks + 1 + (blocks if se == "residual" else 0)
    assert sum(isinstance(m, SkipAdd) for m in model.modules()) == blocks
    model(torch.rand(2, 3, 32, 32)).sum().backward()


def test_robust_block_is_an_aggregated_hierarchical_bottleneck_with_residual_se() -> None:
    with torch.device("meta"):
        net = MacroNet(NAMED_MACROS["robust_resnet_a1"])
    block = net.stages[1][0]
    assert block.scales == 8 and len(block.convs) == 7
    assert block.convs[0].groups == 4 and block.merge.mode == "residual"
    assert block.pool is not None  # the strided block pools its pass-through slice


def test_hierarchical_bottleneck_shapes_at_both_strides() -> None:
    cfg = {**TINY, "block": "bottleneck", "scales": 4, "cardinality": 2, "base_width": 80}
    model = build_macro(cfg)
    shapes: list[torch.Size] = []
    for stage in model.net.stages:
        stage.register_forward_hook(lambda _m, _i, o: shapes.append(o.shape))
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    assert [tuple(s[1:]) for s in shapes] == [(64, 32, 32), (128, 16, 16), (256, 8, 8)]


def test_config_round_trip_and_errors() -> None:
    cfg = MacroConfig((2, 3, 1), (4, 6, 2), block="bottleneck", se="standard", scales=4)
    assert MacroConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="known: basic, preact, bottleneck, robust"):
        MacroConfig((1, 1, 1), (1, 1, 1), block="dense")
    with pytest.raises(ConfigError, match="softplus"):
        MacroConfig((1, 1, 1), (1, 1, 1), activation="gelu")
    with pytest.raises(ConfigError, match="3 depths"):
        MacroConfig((1, 1), (1, 1, 1))
    with pytest.raises(ConfigError, match="unknown macro keys"):
        MacroConfig.from_dict({**TINY, "depth": 3})
    with pytest.raises(ConfigError, match="bottleneck blocks only"):
        MacroConfig((1, 1, 1), (1, 1, 1), block="preact", scales=4)


def test_named_macro_resolves_and_builds_with_normalize_first() -> None:
    spec = resolve_arch("ROBUST_RESNET_A1", "cifar100")
    assert spec.name == "robust_resnet_a1" and spec.genotype is None
    with torch.device("meta"):
        model = spec.build()
    assert isinstance(model[0], Normalize)
    assert model(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 100)


def test_arch_info_reports_a_named_macro(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "info", "wrn34_r", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_params"] == _meta_params(NAMED_MACROS["wrn34_r"])
    assert info["flops"] > 10**10
