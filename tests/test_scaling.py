"""RobustScaling: exact analytic cost, the paper's A1..A4 from their targets, `robnas scale`."""

from __future__ import annotations

import json

import pytest
import torch

from robnas.cli import main
from robnas.errors import ConfigError
from robnas.indicators.complexity import count_flops, count_params
from robnas.models.scaling import ScalingRule, macro_cost, robust_scaling
from robnas.models.wrn import SCALED_A, MacroConfig, build_macro

SMALL = [
    MacroConfig((2, 1, 1), (2, 3, 1), block=b, se=se)
    for b in ("basic", "preact", "bottleneck", "robust")
    for se in ("none", "standard", "residual")
] + [
    MacroConfig((2, 2, 1), (2, 2, 1), block="bottleneck", cardinality=2, scales=4, base_width=40),
    MacroConfig((14, 14, 7), (5, 7, 3), block="robust"),
]


@pytest.mark.parametrize("cfg", SMALL, ids=lambda c: f"{c.block}-{c.se}-{c.scales}")
def test_macro_cost_is_exact(cfg: MacroConfig) -> None:
    with torch.device("meta"):
        model = build_macro(cfg)
    cost = macro_cost(cfg)
    assert (cost.params, cost.macs) == (count_params(model), count_flops(model))


# The paper's FLOPs targets (multiply-adds at 32x32) for its A1..A4 (Table 2, "D&W" rows).
TARGETS = {"a1": 5e9, "a2": 10e9, "a3": 20e9, "a4": 40e9}


@pytest.mark.parametrize("key", sorted(TARGETS))
def test_paper_configs_from_their_flops_targets(key: str) -> None:
    scaled = robust_scaling(TARGETS[key], "flops")
    assert scaled.paper_key == key
    depths, widths = SCALED_A[key]
    # The paper tuned A1..A4 by hand around the rule: every stage within one block / one step.
    assert all(abs(a - b) <= 1 for a, b in zip(scaled.config.depths, depths, strict=True))
    assert all(abs(a - b) <= 1 for a, b in zip(scaled.config.widths, widths, strict=True))
    assert abs(scaled.cost.macs / TARGETS[key] - 1) < 0.01
    total_d, total_w = sum(scaled.config.depths), sum(scaled.config.widths)
    assert abs(total_d / (total_d + total_w) - 0.7) < 0.03  # the 7:3 rule


@pytest.mark.parametrize(("key", "params"), [("a1", 19.2e6), ("a3", 75.9e6)])
def test_robust_resnet_exactly_from_its_parameter_count(key: str, params: float) -> None:
    base = MacroConfig((1, 1, 1), (1, 1, 1), block="robust")
    scaled = robust_scaling(params, "params", base=base)
    assert (scaled.config.depths, scaled.config.widths) == SCALED_A[key]


def test_rule_controls_depth_versus_width() -> None:
    deep = robust_scaling(5e9, rule=ScalingRule.parse("9:1")).config
    wide = robust_scaling(5e9, rule=ScalingRule.parse("3:7")).config
    assert sum(deep.depths) > sum(wide.depths) and sum(deep.widths) < sum(wide.widths)
    with pytest.raises(ConfigError, match="DEPTH:WIDTH"):
        ScalingRule.parse("7-3")


def test_scale_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "--rule", "7:3", "--flops", "20G", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["paper"]["depths"] == [22, 22, 11] and out["paper"]["widths"] == [8, 11, 5]
    cfg = MacroConfig.from_dict(out["config"])
    assert macro_cost(cfg).macs == out["flops"]
    assert main(["scale", "--params", "19.2M", "--block", "robust"]) == 0
    text = capsys.readouterr().out
    assert "[14, 14, 7]" in text and "[5, 7, 3]" in text
    assert main(["scale", "--flops", "lots"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
