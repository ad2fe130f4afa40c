"""The outcome of evaluating one genotype, shared by every evaluator and the study."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Result:
    """Metrics of one genotype (`clean_acc`, `pgd20_acc`, … or tabular keys like `fgsm@1`).

    `status` is "ok" for a completed evaluation; anything else (e.g. "failed") marks a trial the
    strategy should not learn from as a real score.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    num_params: int = 0
    seconds: float = 0.0
    status: str = "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def value(self, key: str) -> float:
        """One metric; a missing or non-finite value reads as NaN so callers can skip it."""
        value = self.metrics.get(key, math.nan)
        return float(value) if value is not None else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "num_params": int(self.num_params),
            "seconds": float(self.seconds),
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(
            metrics={str(k): float(v) for k, v in dict(data.get("metrics", {})).items()},
            num_params=int(data.get("num_params", 0)),
            seconds=float(data.get("seconds", 0.0)),
            status=str(data.get("status", "ok")),
        )


def signed_score(result: Result, objective: str, direction: str) -> float:
    """`objective` signed so that higher is better ("maximize" or "minimize"); -inf for a
    failed result or a missing value, so it never wins and a strategy can skip it."""
    if not result.ok:
        return -math.inf
    value = result.value(objective)
    if math.isnan(value):
        return -math.inf
    return value if direction == "maximize" else -value
