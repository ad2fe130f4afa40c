"""Multi-fidelity pre-screening: rank several proposals by a cheap score, evaluate only the best.

`Prescreened(inner, cheap, ratio=4)` wraps any strategy: each ask draws `ratio` proposals from the
inner strategy, scores them with `cheap(genotype) -> float` (higher is more promising; e.g. a
training-free indicator signed by its direction), returns the most promising one for the
expensive evaluator and tells the inner strategy the others as `status="screened"` (remembered,
never proposed again, never preferred). Only 1/ratio of the proposals costs a full evaluation;
`cheap_evaluations` counts the cheap scores computed (reported beside the queries). The cheap
score must cost no query: in a tabular search it may not read the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robnas.genotype import Genotype
from robnas.result import Result
from robnas.strategies.base import Strategy


class Prescreened(Strategy):
    def __init__(self, inner: Strategy, cheap: Callable[[Genotype], float], *, ratio: int = 4):
        if ratio < 1:
            raise ValueError("ratio must be at least 1")
        super().__init__(
            inner.space,
            seed=inner.seed,
            objective=inner.objective,
            direction=inner.direction,
            feasible=inner.feasible,
            free=inner.free,
            macro=inner.macro,
        )
        self.inner = inner
        self.cheap = cheap
        self.ratio = ratio
        self.name = f"{inner.name}+prescreen"  # type: ignore[misc]
        self.multi_objective = inner.multi_objective  # type: ignore[misc]
        self.screened = 0
        self.cheap_evaluations = 0

    def ask(self) -> Genotype:
        proposals: list[Genotype] = []
        for _ in range(self.ratio):
            g = self.inner.ask()
            if g.to_str() not in {p.to_str() for p in proposals}:
                proposals.append(g)
        scores = [float(self.cheap(g)) for g in proposals]
        self.cheap_evaluations += len(proposals)
        best = max(range(len(proposals)), key=lambda i: scores[i])
        for i, g in enumerate(proposals):
            if i != best:
                self.screened += 1
                self.inner.tell(g, Result(metrics={"prescreen": scores[i]}, status="screened"))
        return self.propose(proposals[best])

    def _on_tell(self, genotype: Genotype, score: float, result: Result) -> None:
        self.inner.tell(genotype, result)

    def reseed(self, seed: int) -> None:
        super().reseed(seed)
        self.inner.reseed(seed)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "screened": self.screened,
            "cheap_evaluations": self.cheap_evaluations,
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.screened = int(state["screened"])
        self.cheap_evaluations = int(state.get("cheap_evaluations", 0))
