"""`robnas search` as a library: resolve and validate settings, then run a tabular or supernet search.

`resolve_settings(...)` checks everything (space, strategy, objective, budget against the space
minimum at the final size, benchmark, data, checkpoint) and returns a `SearchSettings` without
writing anything; `run_search(settings, run_dir, ...)` does the work:

- tabular (`benchmark` set): lookups in the NB201 robustness dataset. One repeat is a durable
  `Study`; `repeats` > 1 runs that many independent searches (seeds derived from `seed`) in
  memory, each of `trials` distinct queries, and reports each returned architecture and the mean.
- supernet: train the weight-sharing supernet at the search size (or load `supernet`), then
  search with the supernet-inherited evaluator (RobNet's protocol) and optionally train the winner.

Queries: a query is the first evaluation of an isomorphism class (`SearchSpace.canonical`), for
every strategy; proposing an evaluated genotype, or an isomorph of one, is a free cache hit.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from robnas.errors import CheckpointError, ConfigError
from robnas.search.common import build_strategy, flops_at  # noqa: F401
from robnas.search.settings import (
    TABULAR_TRIALS,
    SearchSettings,
    format_eps,
    robust_key,
)
from robnas.search.study import Progress
from robnas.space.budget import parse_budget
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import Size
from robnas.strategies import STRATEGIES, make_budget_predicate

log = logging.getLogger(__name__)


def final_macro_of(
    sp: SearchSpace, final_size: str | None, preset_final: str
) -> tuple[str, dict[str, Any]]:
    """(label, macro) of the deployed network: `final_size` (a size name or `C=..,layers=..`)
    on the space's default macro, else the preset's final size."""
    if final_size is None:
        name = preset_final if preset_final in sp.sizes else None
        return (name or "default"), sp.resolve_macro(name)
    return final_size.strip(), sp.resolve_size(Size.parse(final_size))


def resolve_settings(
    *,
    space: str = "darts",
    strategy: str = "random",
    trials: int | None = None,
    preset: str | None = None,
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
    final_size: str | None = None,
    eps: str | float | None = None,
    attack_steps: int | None = None,
    storage: str | None = None,
    flops_budget: str | None = None,
) -> SearchSettings:
    """Validated settings of a search; raises a RobnasError, writes nothing.

    Defaults come from the preset (`tiny` for a supernet search, `paper` for a tabular one).
    The budget binds the final size (`final_size`, default the preset's: the paper size)."""
    options = dict(locals())  # every option, for a macro space's own resolver
    from robnas.config import get_preset, with_overrides

    tabular = benchmark is not None
    p = get_preset(preset if preset is not None else ("paper" if tabular else "tiny"))
    sp = get_space(space)
    if sp.kind == "macro":  # whole networks (wrn): robnas.search.macro
        from robnas.search.macro import resolve_macro_settings

        return resolve_macro_settings(sp, **options)
    if flops_budget is not None:
        raise ConfigError("--flops-budget applies to macro spaces (--space wrn); use --budget")
    STRATEGIES.get(strategy)
    final_label, final_macro = final_macro_of(sp, final_size, p.final_size)
    budget_n = parse_budget(budget) if budget is not None else None
    make_budget_predicate(sp, budget_n, final_macro, dataset)  # BudgetError below the minimum
    common: dict[str, Any] = {
        "space": sp.name if sp.source.endswith(f"{sp.name}.toml") and "/" not in space else space,
        "strategy": strategy.lower(),
        "preset": p.name,
        "seed": seed,
        "budget": budget_n,
        "dataset": dataset,
        "final_size": final_label,
        "final_macro": final_macro,
        "top_k": top_k,
        "prescreen": prescreen,
        "prescreen_ratio": prescreen_ratio,
        "storage": storage,
    }
    if tabular:
        from robnas.data.tabular import check_space, load_benchmark, normalize_key

        if eps is not None or attack_steps is not None:
            raise ConfigError(
                "--eps and --attack-steps set a supernet search's attack; a tabular objective "
                "names its own (e.g. pgd@8)"
            )
        check_space(sp)
        bench = load_benchmark(benchmark, dataset)  # type: ignore[arg-type]
        key = normalize_key(objective or "fgsm@1")
        bench.column(key)
        from robnas.search.tabular import check_tabular_prescreen

        check_tabular_prescreen(prescreen)  # no benchmark column: it would be a free query
        return SearchSettings(
            **common,
            mode="tabular",
            trials=trials if trials is not None else TABULAR_TRIALS,
            benchmark=str(bench.root),
            objective=key,
            direction="maximize",
            repeats=repeats,
            benchmark_macro=sp.resolve_macro("paper"),
        )
    from robnas.attacks import parse_eps
    from robnas.data.datasets import resolve_data_dir
    from robnas.search.settings import supernet_objectives

    steps = attack_steps if attack_steps is not None else 20
    eps_text = format_eps(parse_eps(eps if eps is not None else "8/255"))
    key = objective or robust_key(steps)
    direction = supernet_objectives(max(1, steps)).get(key, "maximize")
    if finetune_epochs is not None and finetune_epochs < 0:
        raise ConfigError("--finetune-epochs must be >= 0 (0: score inherited weights as they are)")
    train_cfg = with_overrides(p.train, seed=seed, epochs=epochs)
    finetune = p.finetune_config(train_cfg, finetune_epochs)
    settings = SearchSettings(
        **common,
        mode="supernet",
        trials=trials if trials is not None else p.candidates.trials,
        objective=key,
        direction=direction,
        repeats=repeats,
        search_macro=sp.resolve_size(p.default_size("search_size")),
        train=train_cfg.to_dict(),
        finetune=finetune.to_dict() if finetune is not None else None,
        train_size=train_size if train_size is not None else p.train_images,
        val_size=val_size if val_size is not None else p.val_images,
        finetune_size=p.candidates.finetune_images,
        score_size=p.candidates.score_images,
        data_dir=data_dir,
        supernet=str(Path(supernet).resolve()) if supernet else None,
        final_train=final_train,
        eps=eps_text,
        attack_steps=steps,
    )  # validates objective, prescreen, repeats, counts
    if supernet is not None and not Path(supernet).is_file():
        raise CheckpointError(
            f"supernet checkpoint {supernet} not found; train one or drop --supernet"
        )
    resolve_data_dir(data_dir)  # DataError when no local copy can be found
    return settings


def run_search(
    settings: SearchSettings,
    run_dir: str | Path,
    storage: str | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    start = time.perf_counter()
    if settings.mode == "tabular":
        from robnas.search.tabular import run_tabular

        # tabular.py still reads a dict (until it takes SearchSettings)
        summary = run_tabular(settings.to_dict(), run_dir, storage, progress)
    elif settings.mode == "macro":
        from robnas.search.macro import run_macro

        summary = run_macro(settings, run_dir, storage, progress, **kw)
    else:
        from robnas.search.supernet import run_supernet

        summary = run_supernet(settings, run_dir, storage, progress, **kw)
    log.info("search finished in %.1fs", time.perf_counter() - start)
    return summary
