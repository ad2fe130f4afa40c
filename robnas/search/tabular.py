"""Tabular searches: lookups in the NB201 robustness dataset, one durable study or many repeats.

Objectives are the dataset's columns as users type them: `clean`, `fgsm@1`, `pgd@8` (eps in
1/255), `aa_square@1`, `fog@3` (a corruption severity); `clean_acc` reads as `clean`.

Queries: a query is the first evaluation of an isomorphism class (`SearchSpace.canonical`),
for every strategy. Proposing a genotype whose class was evaluated is a free cache hit: the
strategy is told the class's result. `asks` counts every proposal, `queries` the classes paid.
`repeats` > 1 runs that many independent searches (seeds from `repeat_seed`) in memory, each of
`trials` distinct queries (`search_once`); the pipeline reports each returned architecture and
the mean.

Budget: `optimum` and `found_optimum` are over the cells within the budget (the best a search
under that budget can return), not over the whole benchmark.

Prescreen: a tabular prescreen ranks proposals by a score that costs no benchmark lookup
(`TABULAR_PRESCREENS`: structural scores of the genotype). Any benchmark column is refused: it
would read the answer without paying a query. Cheap evaluations are counted and reported.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robnas.config import Preset
from robnas.data.tabular import TabularBenchmark, check_space, load_benchmark
from robnas.errors import ConfigError, RobnasError
from robnas.evaluators.base import Evaluator
from robnas.evaluators.tabular import TabularEvaluator
from robnas.genotype import Genotype
from robnas.result import Result
from robnas.search.mode import Mode, Wiring, common_fields, refuse
from robnas.search.request import SearchRequest
from robnas.search.settings import TABULAR_TRIALS, TabularSettings
from robnas.space.cell import CellSpace
from robnas.space.search_space import SearchSpace, get_cell_space
from robnas.specs import Objective
from robnas.strategies import Strategy, make_budget_predicate

log = logging.getLogger(__name__)

#: Scores a tabular prescreen may rank by: structural, computed from the genotype alone.
TABULAR_PRESCREENS: dict[str, Callable[[CellSpace, Genotype], float]] = {
    "density": lambda space, g: space.density(g),
    "edge_density": lambda space, g: space.edge_density(g),
}
#: The objective of a tabular search when none is named (the robustness paper's NAS table).
DEFAULT_OBJECTIVE = Objective("fgsm@1")
#: Proposals answered from the cache in a row before a repeat gives up (the strategy is stuck).
MAX_IDLE = 10_000


def check_tabular_prescreen(name: str | None) -> None:
    """ConfigError unless `name` is a score that costs no benchmark lookup."""
    if name is None or name in TABULAR_PRESCREENS:
        return
    known = ", ".join(TABULAR_PRESCREENS)
    try:
        benchmark_like = Objective.parse(name).key == "clean" or "@" in name
    except RobnasError:
        benchmark_like = False
    if benchmark_like:
        raise ConfigError(
            f"--prescreen {name} reads the benchmark's accuracy, which a search must pay a query "
            f"for; rank by a score that costs no lookup: {known}"
        )
    raise ConfigError(f"unknown tabular --prescreen {name!r}; known: {known}")


def repeat_seed(seed: int, repeat: int) -> int:
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


@dataclass
class Searched:
    """One search: the best genotype found, its result and what it cost."""

    genotype: str
    result: Result
    #: the queries in order: (genotype string, result), one per isomorphism class
    history: list[tuple[str, Result]]
    #: proposals, including the free re-proposals of evaluated classes
    asks: int

    @property
    def queried(self) -> list[str]:
        return [key for key, _ in self.history]


def search_once(strategy: Strategy, evaluator: Evaluator, queries: int) -> Searched:
    """Ask/tell until `queries` isomorphism classes are evaluated; the best one and the history.

    The evaluator is called once per class; a proposal of an evaluated class is told the
    class's result (with its own parameter count when the evaluator can give it)."""
    space = strategy.space
    reset = getattr(evaluator, "reset", None)
    if reset is not None:
        reset()
    params_of = getattr(evaluator, "num_params", None)
    results: dict[str, Result] = {}
    history: list[tuple[str, Result]] = []
    asks = idle = 0
    while len(history) < queries and idle < MAX_IDLE:
        g = strategy.ask()
        asks += 1
        form = space.canonical(g)
        known = results.get(form)
        if known is None:
            result = results[form] = evaluator.evaluate(g)
            history.append((g.to_str(), result))
            idle = 0
        else:
            own = params_of(g) if params_of is not None else known.num_params
            result = dataclasses.replace(known, num_params=own, seconds=0.0)
            idle += 1
        strategy.tell(g, result)
    if idle >= MAX_IDLE:
        log.warning("%s proposed only evaluated classes %d times; stopped", strategy.name, idle)
    best = max(history, key=lambda kr: strategy.score(kr[1]))
    return Searched(best[0], best[1], history, asks)


class TabularSearch(Mode[TabularSettings]):
    name = "tabular"
    settings_type = TabularSettings
    default_preset = "paper"

    @classmethod
    def resolve(cls, request: SearchRequest, space: SearchSpace, preset: Preset) -> TabularSettings:
        if request.eps is not None or request.attack_steps is not None:
            raise ConfigError(
                "--eps and --attack-steps set a network search's attack; a tabular objective "
                "names its own (e.g. pgd@8)"
            )
        refuse(
            {
                "--method": request.method,
                "--size": request.size,
                "--supernet": request.supernet,
                "--final-train": request.final_train,
            },
            "set a network search's training; a tabular search looks results up",
        )
        fields = common_fields(request, space, preset)
        check_space(space)
        bench = load_benchmark(str(request.benchmark), request.data.dataset)
        key = (request.objective or DEFAULT_OBJECTIVE).column()
        bench.column(key)  # a column the dataset lacks is refused with the known ones
        check_tabular_prescreen(request.prescreen)  # no benchmark column: it would be a free query
        return TabularSettings(
            **fields,
            trials=request.trials if request.trials is not None else TABULAR_TRIALS,
            benchmark=str(bench.root),
            objective=key,
            direction="maximize",
            repeats=request.repeats,
            benchmark_macro=space.resolve_macro("paper"),
        )

    def check(self) -> None:
        s = self.settings
        check_tabular_prescreen(s.prescreen)
        self.space = get_cell_space(s.space)
        self.bench = load_benchmark(s.benchmark, s.dataset)

    def wire(self) -> Wiring:
        s, space, bench = self.settings, self.space, self.bench
        cheap = None
        if s.prescreen:
            score = TABULAR_PRESCREENS[s.prescreen]
            cheap = lambda g: score(space, g)  # noqa: E731
        evaluator = TabularEvaluator(bench, space, objective=s.objective, macro=s.benchmark_macro)
        return Wiring.of(s, space, evaluator, cheap=cheap, optimum=lambda: optimum(bench, s, space))


def optimum(bench: TabularBenchmark, s: TabularSettings, space: SearchSpace) -> tuple[float, str]:
    """The best objective value within the budget at the final size, and a cell reaching it."""
    feasible = make_budget_predicate(space, s.budget, s.final_macro, s.dataset)
    return bench.optimum(s.objective, None if s.budget is None else feasible)


__all__ = [
    "TABULAR_PRESCREENS",
    "Searched",
    "TabularSearch",
    "check_tabular_prescreen",
    "repeat_seed",
    "search_once",
]
