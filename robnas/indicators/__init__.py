"""Indicators: pure functions scoring a model (robust accuracy, FSP, Jacobian, density, size)."""

from __future__ import annotations

from robnas.indicators.complexity import count_flops, count_params

__all__ = ["count_flops", "count_params"]
