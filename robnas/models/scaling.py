"""RobustScaling (Huang et al. 2023): depth and width of a three-stage network for a FLOPs or
parameter target, and the exact cost of a MacroConfig without building it.

The rule: per-stage depths in the ratio 2:2:1, per-stage widening factors in the ratio 2:2.5:1,
and total depth : total width = 7:3 (the "7:3" of `robnas scale --rule 7:3`). Both totals grow
with one scale t (sum D = 7t, sum W = 3t); t is solved so the continuous network meets the target,
then each stage's depth and width is rounded down or up, choosing, among the 2^6 roundings, the
one whose cost is nearest the target (ties: the smaller network).

The paper's A1..A4 (targets 5, 10, 20, 40 GFLOPs) were tuned by hand around this rule: A1 comes
out exactly, A2..A4 within one block or one widening step per stage (see tests/test_scaling.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from robnas.errors import BudgetError, ConfigError
from robnas.models.wrn import MacroConfig

DEPTH_RATIO = (2.0, 2.0, 1.0)
WIDTH_RATIO = (2.0, 2.5, 1.0)
PAPER_TARGETS = {5e9: "a1", 10e9: "a2", 20e9: "a3", 40e9: "a4"}  # GFLOPs (MACs) -> config


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def _conv(c_in: float, c_out: float, k: int, side: float, groups: int = 1) -> tuple[float, float]:
    p = k * k * c_in / groups * c_out
    return p, p * side * side


def macro_cost(cfg: MacroConfig, num_classes: int = 10, side: int = 32) -> Cost:
    """Trainable parameters and multiply-adds (convs + linear, as count_flops) of build_macro(cfg)."""
    return _cost(
        cfg, [float(d) for d in cfg.depths], [float(w) for w in cfg.widths], num_classes, side
    )


def _cost(
    cfg: MacroConfig, depths: Sequence[float], widths: Sequence[float], num_classes: int, side: int
) -> Cost:
    # Depths and widths may be fractional: the continuous network the rule solves for.
    pre = cfg.block != "basic"
    params, macs = _conv(3, cfg.stem, 3, side)
    params += 0 if pre else 2 * cfg.stem  # the post-activation stem has a BN
    c_in = float(cfg.stem)
    for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        planes = cfg.base_channels[i] * width
        for j in range(math.ceil(depth)):
            share = min(1.0, depth - j)  # a fractional last block counts pro rata
            stride = 2 if i > 0 and j == 0 else 1
            bp, bm, c_out = _block_cost(cfg, c_in, planes, stride, side / 2**i)
            params, macs = params + share * bp, macs + share * bm
            c_in = c_out
    params += (2 * c_in if pre else 0) + c_in * num_classes + num_classes  # head BN, fc
    macs += c_in * num_classes
    return Cost(round(params), round(macs))


def _block_cost(
    cfg: MacroConfig, c_in: float, planes: float, stride: int, out_side: float
) -> tuple[float, float, float]:
    """(params, MACs, output channels) of one block, mirroring wrn.py / robust_resnet.py."""
    opts = cfg.block_options
    if cfg.block in ("bottleneck", "robust"):
        c_out = planes * 4
        card, scales = opts["cardinality"], opts["scales"]
        w_exact = planes * opts["base_width"] / 160
        w = (math.floor(w_exact) if float(planes).is_integer() else w_exact) * card
        n = max(1, scales - 1)
        p1, m1 = _conv(c_in, w * scales, 1, out_side * stride)
        p2, m2 = _conv(w, w, 3, out_side, card)
        p3, m3 = _conv(w * scales, c_out, 1, out_side)
        bp = p1 + n * p2 + p3 + 2 * c_in + 2 * w * scales + n * 2 * w  # convs + 2 + n BNs
        bm = m1 + n * m2 + m3
    else:
        c_out = planes
        p1, m1 = _conv(c_in, c_out, 3, out_side)
        p2, m2 = _conv(c_out, c_out, 3, out_side)
        pre = cfg.block == "preact"
        bp, bm = p1 + p2 + (2 * c_in + 2 * c_out if pre else 4 * c_out), m1 + m2
    if stride > 1 or c_in != c_out:
        ps, ms = _conv(c_in, c_out, 1, out_side)
        bp, bm = bp + ps + (2 * c_out if cfg.block == "basic" else 0), bm + ms
    if opts["se"] != "none":
        hidden = max(1, int(c_out) // opts["se_reduction"])
        bp += 2 * c_out * hidden + (2 * c_out if opts["se"] == "residual" else 0)
        bm += 2 * c_out * hidden
    return bp, bm, c_out


@dataclass(frozen=True)
class ScalingRule:
    """depth : width = depth_share : (1 - depth_share) of the totals; per-stage ratios."""

    depth_share: float = 0.7
    depth_ratio: tuple[float, ...] = DEPTH_RATIO
    width_ratio: tuple[float, ...] = WIDTH_RATIO

    @classmethod
    def parse(cls, text: str) -> ScalingRule:
        """`7:3` -> depth_share 0.7."""
        try:
            d, w = (float(x) for x in text.split(":"))
            if d <= 0 or w <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"cannot read scaling rule {text!r}: write DEPTH:WIDTH, e.g. 7:3"
            ) from None
        return cls(depth_share=d / (d + w))

    def continuous(self, t: float) -> tuple[list[float], list[float]]:
        sd, sw = sum(self.depth_ratio), sum(self.width_ratio)
        total_d, total_w = self.depth_share * 10 * t, (1 - self.depth_share) * 10 * t
        return ([total_d * r / sd for r in self.depth_ratio],
                [total_w * r / sw for r in self.width_ratio])  # fmt: skip


@dataclass(frozen=True)
class Scaled:
    config: MacroConfig
    cost: Cost
    target: float
    metric: str
    continuous_depths: tuple[float, ...]
    continuous_widths: tuple[float, ...]

    @property
    def paper_key(self) -> str | None:
        """ "a1".."a4" when the target is one of the paper's FLOPs targets (Table 2), else None."""
        return PAPER_TARGETS.get(self.target) if self.metric == "flops" else None


def robust_scaling(
    target: float,
    metric: str = "flops",
    rule: ScalingRule | None = None,
    base: MacroConfig | None = None,
    num_classes: int = 10,
) -> Scaled:
    """The RobustScaling configuration whose `metric` ("flops" = multiply-adds, or "params") is
    nearest `target`; `base` gives the block, activation and SE (default: pre-activation WRN)."""
    if metric not in ("flops", "params"):
        raise ConfigError(f"unknown scaling metric {metric!r}; known: flops, params")
    rule = rule or ScalingRule()
    base = base or MacroConfig((1, 1, 1), (1, 1, 1))

    def measure(depths: Sequence[float], widths: Sequence[float]) -> float:
        c = _cost(base, depths, widths, num_classes, 32)
        return c.macs if metric == "flops" else c.params

    lo, hi = 0.05, 16.0
    while measure(*rule.continuous(hi)) < target:
        hi *= 2
        if hi > 1e4:
            raise BudgetError(f"target {target:.3g} is beyond any network of this rule")
    if measure(*rule.continuous(lo)) > target:
        raise BudgetError(f"target {target:.3g} is below the smallest network of this rule")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if measure(*rule.continuous(mid)) < target else (lo, mid)
    depths, widths = rule.continuous(lo)
    options = [(math.floor(x), math.ceil(x)) for x in (*depths, *widths)]
    best: tuple[float, float, float, tuple[int, ...]] | None = None
    for combo in itertools.product(*options):
        if min(combo) < 1:
            continue
        cost = measure(combo[:3], combo[3:])
        # nearest cost; ties go to the smaller network, then to the rounding nearest the ratios
        drift = sum(abs(a - b) for a, b in zip(combo, (*depths, *widths), strict=True))
        key = (round(abs(math.log(cost / target)), 12), cost, drift, combo)
        best = key if best is None or key < best else best
    if best is None:
        raise BudgetError(f"target {target:.3g} is below the smallest network of this rule")
    combo = best[-1]
    cfg = replace(base, depths=combo[:3], widths=combo[3:])
    return Scaled(cfg, macro_cost(cfg, num_classes), target, metric, tuple(depths), tuple(widths))
