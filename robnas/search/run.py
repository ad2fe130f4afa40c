"""`robnas search` as a library: resolve and validate settings, then run a tabular or supernet search.

`resolve_settings(...)` checks everything (space, strategy, objective, budget against the space
minimum at the final size, benchmark, data, checkpoint) and returns the JSON settings without
writing anything; `run_search(settings, run_dir, ...)` does the work:

- tabular (`benchmark` set): lookups in the NB201 robustness dataset. One repeat is a durable
  `Study`; `repeats` > 1 runs that many independent searches (seeds derived from `seed`) in
  memory, each of `trials` distinct queries, and reports each returned architecture and the mean.
- supernet: train the weight-sharing supernet at the search size (or load `supernet`), then
  search with the supernet-inherited evaluator (RobNet's protocol) and optionally train the winner.

Queries (tabular): a query is a distinct genotype; proposing an evaluated genotype again is a
cache hit and costs nothing. Isomorphic but different cells count as different queries (a
strategy cannot know they are equal without looking them up).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from robnas.errors import CheckpointError, ConfigError, UnknownName
from robnas.search.common import (  # noqa: F401
    SEARCH_SIZE,
    SUPERNET_OBJECTIVES,
    _direction,
    build_strategy,
    flops_at,
)
from robnas.search.study import Progress
from robnas.space.budget import parse_budget
from robnas.space.search_space import get_space
from robnas.strategies import STRATEGIES, make_budget_predicate

log = logging.getLogger(__name__)


def resolve_settings(
    *,
    space: str = "darts",
    strategy: str = "random",
    trials: int = 20,
    preset: str = "tiny",
    seed: int = 0,
    budget: str | None = None,
    objective: str | None = None,
    benchmark: str | None = None,
    dataset: str = "cifar10",
    data_dir: str | None = None,
    repeats: int = 1,
    supernet: str | None = None,
    final_train: bool = False,
    top_k: int = 5,
    prescreen: str | None = None,
    prescreen_ratio: int = 4,
    train_size: int | None = None,
    val_size: int | None = None,
    epochs: int | None = None,
    finetune_epochs: int | None = None,
) -> dict[str, Any]:
    """Validated, JSON-ready settings of a search; raises a RobnasError, writes nothing."""
    sp = get_space(space)
    STRATEGIES.get(strategy)
    if trials < 1 or repeats < 1 or top_k < 1 or prescreen_ratio < 1:
        raise ConfigError("--trials, --repeats, --top-k and --prescreen-ratio must be at least 1")
    if preset not in ("tiny", "paper"):
        raise UnknownName(f"unknown preset {preset!r}; known: paper, tiny")
    final_macro = sp.resolve_macro(preset if preset in sp.presets else None)
    budget_n = parse_budget(budget) if budget is not None else None
    make_budget_predicate(sp, budget_n, final_macro, dataset)  # BudgetError below the minimum
    settings: dict[str, Any] = {
        "space": sp.name if sp.source.endswith(f"{sp.name}.toml") and "/" not in space else space,
        "strategy": strategy.lower(),
        "trials": trials,
        "preset": preset,
        "seed": seed,
        "budget": budget_n,
        "dataset": dataset,
        "final_macro": final_macro,
        "top_k": top_k,
        "prescreen": prescreen,
        "prescreen_ratio": prescreen_ratio,
    }
    if benchmark is not None:
        from robnas.data.tabular import check_space, load_benchmark, normalize_key

        check_space(sp)
        bench = load_benchmark(benchmark, dataset)
        key = normalize_key(objective or "fgsm@1")
        bench.column(key)
        if prescreen is not None:
            bench.column(prescreen)
        return {
            **settings,
            "mode": "tabular",
            "benchmark": str(bench.root),
            "objective": key,
            "direction": "maximize",
            "repeats": repeats,
            "benchmark_macro": sp.resolve_macro("paper"),
        }
    if repeats != 1:
        raise ConfigError("--repeats needs a tabular search (--benchmark PATH)")
    key = objective or "pgd20_acc"
    if key not in SUPERNET_OBJECTIVES:
        raise UnknownName(
            f"unknown objective {key!r} for a supernet search; known: {', '.join(sorted(SUPERNET_OBJECTIVES))}"
        )
    if prescreen is not None and prescreen not in (
        "fsp_dist",
        "jac_norm",
        "density",
        "edge_density",
    ):
        raise UnknownName(
            f"unknown --prescreen {prescreen!r}; known: density, edge_density, fsp_dist, jac_norm"
        )
    from robnas.config import CANDIDATE_PRESETS, DATA_PRESETS, TRAIN_PRESETS, with_overrides
    from robnas.data.datasets import resolve_data_dir

    if supernet is not None and not Path(supernet).is_file():
        raise CheckpointError(
            f"supernet checkpoint {supernet} not found; train one or drop --supernet"
        )
    resolve_data_dir(data_dir)  # DataError when no local copy can be found
    train_cfg = with_overrides(TRAIN_PRESETS[preset], seed=seed, epochs=epochs)
    train_n, val_n = DATA_PRESETS[preset]
    finetune_n, score_n = CANDIDATE_PRESETS[preset]
    search_preset = SEARCH_SIZE[preset] if SEARCH_SIZE[preset] in sp.presets else None
    ft_epochs = finetune_epochs if finetune_epochs is not None else (1 if preset == "tiny" else 3)
    if ft_epochs < 0:
        raise ConfigError("--finetune-epochs must be >= 0 (0: score inherited weights as they are)")
    finetune = with_overrides(train_cfg, epochs=ft_epochs, warmup_epochs=0.0) if ft_epochs else None
    return {
        **settings,
        "mode": "supernet",
        "objective": key,
        "direction": _direction(key),
        "repeats": 1,
        "search_macro": sp.resolve_macro(search_preset),
        "train": train_cfg.to_dict(),
        "finetune": finetune.to_dict() if finetune is not None else None,
        "train_size": train_size if train_size is not None else train_n,
        "val_size": val_size if val_size is not None else val_n,
        "finetune_size": finetune_n,
        "score_size": score_n,
        "data_dir": data_dir,
        "supernet": str(Path(supernet).resolve()) if supernet else None,
        "final_train": final_train,
    }


# -- shared pieces ---------------------------------------------------------------------------------


def run_search(
    settings: dict[str, Any],
    run_dir: str | Path,
    storage: str | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    start = time.perf_counter()
    if settings["mode"] == "tabular":
        from robnas.search.tabular import run_tabular

        summary = run_tabular(settings, run_dir, storage, progress)
    else:
        from robnas.search.supernet import run_supernet

        summary = run_supernet(settings, run_dir, storage, progress, **kw)
    log.info("search finished in %.1fs", time.perf_counter() - start)
    return summary
