"""Indicators: pure functions scoring a model (robust accuracy, FSP, Jacobian, input Hessian,
NASWOT, ZiCo, density, size).

`INDICATORS` maps a name to `Indicator(name, fn, direction)`; direction +1 means a higher value
predicts a more robust network, -1 a lower one. Call `INDICATORS.get("fsp_dist")(model, images,
labels, cfg=...)` for a dict of metrics.
"""

from __future__ import annotations

from robnas.indicators.base import INDICATORS, Indicator, IndicatorConfig, as_config
from robnas.indicators.complexity import count_flops, count_params
from robnas.indicators.fsp import fsp_dist
from robnas.indicators.hessian import hessian_eig
from robnas.indicators.jacobian import jac_norm
from robnas.indicators.robust import robust_acc
from robnas.indicators.structure import STRUCTURAL, density, edge_density, flops, num_params
from robnas.indicators.zero_cost import naswot, zico

for _indicator in (
    Indicator("fsp_dist", fsp_dist, -1),  # RobNet finding 3: lower FSP distance, more robust
    Indicator("jac_norm", jac_norm, -1),  # smoother input-output map, more robust
    Indicator("hessian_eig", hessian_eig, -1),  # flatter loss around the input, more robust
    Indicator("naswot", naswot, 1),  # distinct ReLU codes across images, more accurate (NASWOT)
    Indicator("zico", zico, 1),  # large, consistent weight gradients, more accurate (ZiCo)
    Indicator("robust_acc", robust_acc, 1),
    Indicator("density", density, 1),  # RobNet finding 1: denser cells are more robust
    Indicator("edge_density", edge_density, 1),
    Indicator("num_params", num_params, 1),  # bigger nets are more robust; cost is the budget's job
    Indicator("flops", flops, 1),
):
    INDICATORS.add(_indicator.name, _indicator)

__all__ = [
    "INDICATORS",
    "STRUCTURAL",
    "Indicator",
    "IndicatorConfig",
    "as_config",
    "count_flops",
    "count_params",
]
