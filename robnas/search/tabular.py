"""Tabular searches: lookups in the NB201 robustness dataset, one durable study or many repeats."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.result import Result
from robnas.search.common import build_strategy, flops_at
from robnas.search.study import Progress, Study, init_run_dir
from robnas.space.search_space import get_space
from robnas.strategies import Strategy

log = logging.getLogger(__name__)


def repeat_seed(seed: int, repeat: int) -> int:
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def search_once(
    strategy: Strategy, evaluator: Any, queries: int
) -> tuple[str, Result, list[tuple[str, Result]]]:
    """Ask/tell until `queries` distinct genotypes are evaluated; the best one and the history."""
    evaluator.reset()
    results: dict[str, Result] = {}
    history: list[tuple[str, Result]] = []
    idle = 0
    while evaluator.queries < queries and idle < 10_000:
        g = strategy.ask()
        key = g.to_str()
        result = results.get(key) or evaluator.evaluate(g)
        if key not in results:
            results[key] = result
            history.append((key, result))
            idle = 0
        else:
            idle += 1
        strategy.tell(g, result)
    best = max(history, key=lambda kr: strategy.score(kr[1]))
    return best[0], best[1], history


def run_tabular(
    settings: dict[str, Any], run_dir: Path, storage: str | None, progress: Progress | None
) -> dict[str, Any]:
    from robnas.data.tabular import REPORT_KEYS, TabularEvaluator, load_benchmark

    space = get_space(settings["space"])
    bench = load_benchmark(settings["benchmark"], settings["dataset"])
    evaluator = TabularEvaluator(
        bench, space, objective=settings["objective"], macro=settings["benchmark_macro"]
    )
    cheap = None
    if settings["prescreen"]:
        column = settings["prescreen"]
        cheap = lambda g: bench.value(g, column)  # noqa: E731 (a cheaper column ranks candidates)
    final_params = lambda g: space.num_params(g, settings["final_macro"], settings["dataset"])  # noqa: E731
    flops = flops_at(space, settings["final_macro"], settings["dataset"])
    if settings["repeats"] == 1:
        strategy = build_strategy(settings, space, settings["seed"], cheap)
        study = Study(
            run_dir, settings, evaluator, strategy, storage, flops=flops, final_params=final_params
        )
        study.run(settings["trials"], progress=progress)
        return study.summary(settings["top_k"], extra={"queries": evaluator.queries})

    init_run_dir(run_dir, settings)
    repeats: list[dict[str, Any]] = []
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["repeat", "query", "genotype", "status", *evaluator.keys])
    best_so_far: Any = None
    for r in range(settings["repeats"]):
        strategy = build_strategy(settings, space, repeat_seed(settings["seed"], r), cheap)
        key, result, history = search_once(strategy, evaluator, settings["trials"])
        for q, (text, res) in enumerate(history):
            writer.writerow(
                [r, q, text, res.status, *(repr(res.metrics[k]) for k in evaluator.keys)]
            )
        g = Genotype.from_str(key)
        metrics = bench.metrics(g, REPORT_KEYS)
        repeats.append({"repeat": r, "genotype": key, "metrics": metrics})
        if best_so_far is None or result.value(settings["objective"]) > best_so_far[1]:
            best_so_far = (key, result.value(settings["objective"]))
        if progress is not None:
            progress(r + 1, settings["repeats"], None, None)
    atomic_write_text(run_dir / "trials.csv", rows.getvalue())
    keys = list(repeats[0]["metrics"])
    mean = {k: float(np.mean([rep["metrics"][k] for rep in repeats])) for k in keys}
    std = {k: float(np.std([rep["metrics"][k] for rep in repeats])) for k in keys}
    col = bench.table[:, bench.column(settings["objective"])]
    optimum = float(np.nanmax(col))
    best_g = Genotype.from_str(best_so_far[0])
    summary = {
        "settings": settings,
        "objective": {"key": settings["objective"], "direction": "maximize"},
        "queries_per_repeat": settings["trials"],
        "repeats": repeats,
        "mean": mean,
        "std": std,
        "optimum": optimum,
        "found_optimum": float(
            np.mean([rep["metrics"][settings["objective"]] == optimum for rep in repeats])
        ),
        "best": {
            "genotype": best_so_far[0],
            "metrics": bench.metrics(best_g, REPORT_KEYS),
            "num_params": final_params(best_g),
            "flops": flops(best_g),
        },
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
