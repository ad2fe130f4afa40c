"""The tabular evaluator: look NB201 cells up in the robustness dataset, counting classes.

A query is the first evaluation of an isomorphism class (`SearchSpace.canonical`): isomorphs
share one row of the dataset, so a later isomorph is a cache hit and costs nothing, whichever
strategy proposed it.
"""

from __future__ import annotations

import time
from typing import Any

from robnas.data.tabular import REPORT_KEYS, TabularBenchmark, check_space, normalize_key
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.result import Result
from robnas.space.search_space import SearchSpace


class TabularEvaluator:
    """Looks genotypes up; counts queries (classes) and cache hits (isomorphs of queried ones).

    `num_params` is the parameter count of the genotype itself in the benchmark's network (NB201
    macro, C=16, N=5); isomorphs may differ in it (a dead node keeps its weights).
    `queried` lists the genotype strings that were queries, in order (one per class).
    """

    def __init__(
        self,
        benchmark: TabularBenchmark,
        space: SearchSpace,
        *,
        objective: str,
        report: tuple[str, ...] = REPORT_KEYS,
        macro: dict[str, Any] | None = None,
    ) -> None:
        check_space(space)
        self.benchmark = benchmark
        self.space = space
        self.objective = normalize_key(objective)
        benchmark.column(self.objective)  # unknown objective -> UnknownName now, not mid-search
        keys = [normalize_key(k) for k in report]
        self.keys = tuple(dict.fromkeys([*keys, self.objective]))
        for k in self.keys:
            benchmark.column(k)
        self.macro = space.resolve_macro("paper") if macro is None else macro
        self._classes: set[str] = set()
        self.queried: list[str] = []
        self.queries = 0
        self.cache_hits = 0

    def is_cached(self, genotype: Genotype) -> bool:
        """True if an isomorph of `genotype` was queried already (evaluating it is free)."""
        return self.space.canonical(genotype) in self._classes

    def num_params(self, genotype: Genotype) -> int:
        return sizing.num_params(self.space, genotype, self.macro)

    def evaluate(self, genotype: Genotype) -> Result:
        start = time.perf_counter()
        metrics = self.benchmark.metrics(genotype, self.keys)
        form = self.space.canonical(genotype)
        if form in self._classes:
            self.cache_hits += 1
        else:
            self._classes.add(form)
            self.queried.append(genotype.to_str())
            self.queries += 1
        return Result(
            metrics=metrics,
            num_params=self.num_params(genotype),
            seconds=time.perf_counter() - start,
        )

    def reset(self) -> None:
        self._classes.clear()
        self.queried.clear()
        self.queries = 0
        self.cache_hits = 0
