"""Old home of the network evaluators, kept so existing imports work: import from
robnas.evaluators.{base,supernet,standalone,indicator} instead."""

from __future__ import annotations

from robnas.device import resolve_device
from robnas.evaluators.base import (
    DEFAULT_INDICATORS,
    Evaluator,
    NetworkEvaluator,
    QueryCounter,
    Scorer,
    genotype_seed,
    seeded_build,
)
from robnas.evaluators.indicator import IndicatorEvaluator
from robnas.evaluators.standalone import StandaloneEvaluator
from robnas.evaluators.supernet import SupernetEvaluator

__all__ = [
    "DEFAULT_INDICATORS",
    "Evaluator",
    "IndicatorEvaluator",
    "NetworkEvaluator",
    "QueryCounter",
    "Scorer",
    "StandaloneEvaluator",
    "SupernetEvaluator",
    "genotype_seed",
    "resolve_device",
    "seeded_build",
]
