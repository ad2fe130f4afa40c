"""Tabular searches: lookups in the NB201 robustness dataset, one durable study or many repeats.

Queries: a query is the first evaluation of an isomorphism class (`SearchSpace.canonical`),
for every strategy. Proposing a genotype whose class was evaluated is a free cache hit: the
strategy is told the class's result. `asks` counts every proposal, `queries` the classes paid.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.result import Result
from robnas.search.study import Progress, Study
from robnas.space.search_space import SearchSpace, get_space
from robnas.strategies import Strategy, make_budget_predicate
from robnas.strategies.prescreen import Prescreened

if TYPE_CHECKING:
    from robnas.evaluators.base import Evaluator

log = logging.getLogger(__name__)

#: Scores a tabular prescreen may rank by: structural, computed from the genotype alone.
TABULAR_PRESCREENS: dict[str, Callable[[SearchSpace, Genotype], float]] = {
    "density": lambda space, g: space.density(g),
    "edge_density": lambda space, g: space.edge_density(g),
}
#: Proposals answered from the cache in a row before a repeat gives up (the strategy is stuck).
MAX_IDLE = 10_000


def check_tabular_prescreen(name: str | None) -> None:
    """ConfigError unless `name` is a score that costs no benchmark lookup."""
    if name is None or name in TABULAR_PRESCREENS:
        return
    from robnas.data.tabular import normalize_key

    known = ", ".join(TABULAR_PRESCREENS)
    try:
        benchmark_like = name.strip().lower() == "clean" or "@" in normalize_key(name)
    except Exception:
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


def cheap_evaluations(strategy: Strategy) -> int:
    return strategy.cheap_evaluations if isinstance(strategy, Prescreened) else 0


def _as_dict(settings: Any) -> dict[str, Any]:
    return settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)


def run_tabular(
    settings: Any, run_dir: Path, storage: str | None, progress: Progress | None
) -> dict[str, Any]:
    from robnas.data.tabular import load_benchmark
    from robnas.evaluators.tabular import TabularEvaluator
    from robnas.search.common import BudgetGate, build_strategy, flops_at

    s = _as_dict(settings)
    check_tabular_prescreen(s["prescreen"])
    space = get_space(s["space"])
    bench = load_benchmark(s["benchmark"], s["dataset"])
    evaluator = TabularEvaluator(bench, space, objective=s["objective"], macro=s["benchmark_macro"])
    cheap = None
    if s["prescreen"]:
        score = TABULAR_PRESCREENS[s["prescreen"]]
        cheap = lambda g: score(space, g)  # noqa: E731
    final_macro, dataset = s["final_macro"], s["dataset"]
    gate = BudgetGate(space, s["budget"], final_macro, dataset)
    flops = flops_at(space, final_macro, dataset)
    if s["repeats"] == 1:
        from robnas.search.common import write_study_outputs

        strategy = build_strategy(s, space, s["seed"], cheap, gate=gate)
        study = Study(
            run_dir,
            s,
            evaluator,
            strategy,
            storage,
            flops=flops,
            final_params=lambda g: space.num_params(g, final_macro, dataset),
        )
        study.run(s["trials"], progress=progress)
        from robnas.search.settings import SearchSettings

        summary = write_study_outputs(
            run_dir,
            settings if isinstance(settings, SearchSettings) else SearchSettings.from_dict(s),
            study.records(),
            strategy,
            final_params=lambda g: space.num_params(g, final_macro, dataset),
            proxy_params=None,
            flops=flops,
            gate=gate,
        )
        return _add_cheap(run_dir, summary, cheap_evaluations(strategy))

    searches: list[Searched] = []
    cheap_counts: list[int] = []
    for r in range(s["repeats"]):
        strategy = build_strategy(s, space, repeat_seed(s["seed"], r), cheap, gate=gate)
        searches.append(search_once(strategy, evaluator, s["trials"]))
        cheap_counts.append(cheap_evaluations(strategy))
        if progress is not None:
            progress(r + 1, s["repeats"], None, None)
    feasible = make_budget_predicate(space, s["budget"], final_macro, dataset)
    optimum = bench.optimum(s["objective"], None if s["budget"] is None else feasible)
    return write_repeats(
        run_dir,
        settings,
        searches,
        cheap_counts,
        optimum,
        final_params=lambda g: space.num_params(g, final_macro, dataset),
        flops=flops,
        gate=gate,
    )


def _add_cheap(run_dir: Path, summary: dict[str, Any], cheap: int) -> dict[str, Any]:
    from robnas.search.rundir import RunDir

    summary = {**summary, "cheap_evaluations": cheap}
    RunDir(run_dir).write_summary(summary, topk=False)
    return summary


def write_repeats(
    run_dir: Path,
    settings: Any,
    searches: list[Searched],
    cheap_counts: list[int],
    optimum: tuple[float, str],
    *,
    final_params: Callable[[Genotype], int],
    flops: Callable[[Genotype], int],
    gate: Any,
) -> dict[str, Any]:
    """trials.csv (one row per query), summary.json (per repeat: `queried` in order) of repeats."""
    from robnas.data.tabular import REPORT_KEYS
    from robnas.search.common import trial_row
    from robnas.search.rundir import RunDir, entry, make_summary

    s = _as_dict(settings)
    key = s["objective"]
    rundir = RunDir(run_dir)
    rundir.init(settings)
    rows = [
        trial_row(q, text, res, num_params=final_params(Genotype.from_str(text)), repeat=r)
        for r, search in enumerate(searches)
        for q, (text, res) in enumerate(search.history)
    ]
    rundir.write_trials(rows)
    repeats: list[dict[str, Any]] = []
    for r, (search, cheap) in enumerate(zip(searches, cheap_counts, strict=True)):
        metrics = {k: search.result.metrics[k] for k in (*REPORT_KEYS, key)}
        repeats.append(
            {
                "repeat": r,
                "genotype": search.genotype,
                "metrics": metrics,
                "num_params": final_params(Genotype.from_str(search.genotype)),
                "queries": len(search.history),
                "asks": search.asks,
                "cheap_evaluations": cheap,
                "queried": search.queried,
            }
        )
    keys = list(repeats[0]["metrics"])
    values = {k: [rep["metrics"][k] for rep in repeats] for k in keys}
    aggregate = {
        "mean": {k: float(np.mean(v)) for k, v in values.items()},
        "std": {k: float(np.std(v)) for k, v in values.items()},
        "optimum": optimum[0],
        "optimum_genotype": optimum[1],
        "found_optimum": float(np.mean([v == optimum[0] for v in values[key]])),
        "queries_per_repeat": s["trials"],
        "asks_mean": float(np.mean([rep["asks"] for rep in repeats])),
        "cheap_evaluations": int(sum(cheap_counts)),
    }
    # top_k: the distinct returned architectures, best first
    ranked: dict[str, dict[str, Any]] = {}
    for rep in sorted(repeats, key=lambda rep: rep["metrics"][key], reverse=True):
        if rep["genotype"] not in ranked:
            g = Genotype.from_str(rep["genotype"])
            ranked[rep["genotype"]] = entry(
                genotype=rep["genotype"],
                metrics=rep["metrics"],
                num_params=rep["num_params"],
                flops=flops(g),
            )
        if len(ranked) >= s["top_k"]:
            break
    top = list(ranked.values())
    summary = make_summary(
        settings,
        trials=len(rows),
        failed=sum(not res.ok for search in searches for _, res in search.history),
        queries=len(rows),
        best=top[0],
        top_k=top,
        budget=gate.report(),
        repeats=repeats,
        aggregate=aggregate,
    )
    summary["cheap_evaluations"] = aggregate["cheap_evaluations"]
    rundir.write_summary(summary)
    return summary


__all__ = [
    "TABULAR_PRESCREENS",
    "Searched",
    "check_tabular_prescreen",
    "repeat_seed",
    "run_tabular",
    "search_once",
]
