"""`robnas search` as a library: one pipeline for every mode.

    settings = resolve_settings(request)      # validated, nothing written
    summary = run_search(settings, run_dir)   # space, strategy, evaluator, budget gate, study

`resolve_settings` picks the mode (a macro space searches whole networks, `benchmark` looks
results up in the NB201 robustness dataset, anything else trains a supernet) and lets it turn
the request into its settings type. `run_search` then runs the same steps for every mode:

    1. the mode reads what it needs and refuses what does not fit (`Mode.check`), nothing
       written yet
    2. config.json (a run directory of another configuration is refused)
    3. the mode wires its parts (`Mode.wire`): space, evaluator, budget gate, sizes, an
       optional cheap score to prescreen by (a supernet trains here)
    4. the strategy under the budget gate, and one durable `Study` of `trials` trials (workers,
       resume and Optuna storages as study.py describes), or, for `repeats` > 1 (tabular),
       that many independent in-memory searches of `trials` queries each
    5. the one writer of trials.csv, summary.json and topk/ (`write_outputs`), again after the
       mode's finish (the winner's final training) when there is one

Queries: a query is the first evaluation of an isomorphism class (`SearchSpace.canonical`), for
every strategy; proposing an evaluated genotype, or an isomorph of one, is a free cache hit.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robnas.config import get_preset
from robnas.errors import ConfigError, UnknownName, check_name
from robnas.genotype import Genotype
from robnas.objectives.protocols import PROTOCOLS
from robnas.search.common import build_strategy, cheap_evaluations
from robnas.search.mode import Mode, Phase, Wiring, quiet
from robnas.search.request import SearchRequest
from robnas.search.rundir import RunDir, TrialRecord, entry, write_outputs
from robnas.search.settings import SearchSettings, TabularSettings
from robnas.search.study import Progress, Study
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import Objective
from robnas.strategies import STRATEGIES

if TYPE_CHECKING:
    from robnas.search.tabular import Searched

log = logging.getLogger(__name__)

#: The modes by name (config.json's "mode") and the module of each, imported only when used:
#: a network search never imports the tabular benchmark's code.
MODE_MODULES = {
    "supernet": ("robnas.search.supernet", "SupernetSearch"),
    "macro": ("robnas.search.macro", "MacroSearch"),
    "tabular": ("robnas.search.tabular", "TabularSearch"),
    "protocol": ("robnas.search.protocol", "ProtocolSearch"),
}


def mode_class(name: str) -> type[Mode[Any]]:
    module, cls = MODE_MODULES[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def mode_of(request: SearchRequest, space: SearchSpace) -> type[Mode[Any]]:
    """Macro spaces search whole networks; a benchmark is looked up; `--protocol ranker` or
    `lowfi` scores NB201 cells by that protocol; else (`--protocol supernet` too) a supernet
    trains."""
    if space.kind == "macro":
        if request.protocol is not None:
            raise ConfigError("--protocol applies to NB201 cell searches, not macro spaces")
        return mode_class("macro")
    if request.benchmark is not None:
        if request.protocol is not None:
            raise ConfigError(
                "--protocol says how a network search scores cells; a --benchmark search looks "
                "them up (drop one of the two)"
            )
        return mode_class("tabular")
    if request.protocol in ("ranker", "lowfi"):
        return mode_class("protocol")
    if request.protocol is not None:
        check_name("protocol", request.protocol, PROTOCOLS)
    return mode_class("supernet")


def resolve_settings(request: SearchRequest) -> SearchSettings:
    """Validated settings of a search; raises a RobnasError, writes nothing. Defaults come
    from the preset (`tiny` for a network search, `paper` for a tabular one); the budget binds
    the final size (`--final-size`, default the preset's: the paper size)."""
    space = get_space(request.space)
    mode = mode_of(request, space)
    if request.protocol == "supernet":  # as the NB201 robustness dataset: trained normally
        objective = request.objective or Objective("fgsm@1")
        if objective.key not in ("clean", "clean_acc", "fgsm@1", "pgd@1"):
            raise UnknownName(
                f"unknown objective {objective.key!r} for --protocol supernet; known: clean, "
                "fgsm@1, pgd@1"
            )
        request = dataclasses.replace(
            request, method=request.method or "clean", objective=objective
        )
    STRATEGIES.get(request.strategy)
    preset = request.preset or get_preset(mode.default_preset)
    return mode.resolve(request, space, preset)


def run_search(
    settings: SearchSettings,
    run_dir: str | Path,
    storage: str | None = None,
    progress: Progress | None = None,
    *,
    phase: Phase = quiet,
    train_progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run the search `settings` describe in `run_dir` (resuming what it holds); the summary."""
    run_dir = Path(run_dir)
    start = time.perf_counter()
    mode = mode_class(settings.mode)(settings, run_dir, phase=phase, train_progress=train_progress)
    mode.check()
    RunDir(run_dir).init(settings)  # config.json first: a bad run dir fails before work starts
    wiring = mode.wire()
    phase("searching")
    if isinstance(settings, TabularSettings) and settings.repeats > 1:
        summary = _repeats(settings, run_dir, wiring, progress)
    else:
        summary = _study(settings, run_dir, wiring, storage or settings.storage, progress)
    log.info("search finished in %.1fs", time.perf_counter() - start)
    return summary


def _study(
    settings: SearchSettings,
    run_dir: Path,
    w: Wiring,
    storage: str | None,
    progress: Progress | None,
) -> dict[str, Any]:
    strategy = build_strategy(settings, w.space, settings.seed, w.gate, w.cheap)
    study = Study(
        run_dir,
        settings,
        w.evaluator,
        strategy,
        storage,
        flops=w.flops,
        final_params=w.final_params,
        proxy_params=w.proxy_params,
    )
    study.run(settings.trials, progress=progress)

    def write(final: dict[str, Any] | None = None) -> dict[str, Any]:
        return write_outputs(
            run_dir,
            settings,
            study.records(),
            score=strategy.score,
            multi_objective=strategy.multi_objective,
            top_k=settings.top_k,
            final_params=w.final_params,
            proxy_params=w.proxy_params,
            flops=w.flops,
            budget=w.gate.report(),  # rejections of the whole (replayed) search
            final=final,
            cheap_evaluations=cheap_evaluations(strategy),
        )

    summary = write()
    if w.finish is not None and summary["best"] is not None:
        summary = write(final=w.finish(summary["best"]["genotype"]))
    return summary


def _repeats(
    settings: TabularSettings, run_dir: Path, w: Wiring, progress: Progress | None
) -> dict[str, Any]:
    """`repeats` independent searches of `trials` queries: trials.csv has one row per query
    (`repeat` says which search), summary.json each returned architecture and the mean."""
    from robnas.search.tabular import repeat_seed, search_once

    searches: list[Searched] = []
    cheap: list[int] = []
    for r in range(settings.repeats):
        seed = repeat_seed(settings.seed, r)
        strategy = build_strategy(settings, w.space, seed, w.gate, w.cheap)
        searches.append(search_once(strategy, w.evaluator, settings.trials))
        cheap.append(cheap_evaluations(strategy))
        if progress is not None:
            progress(r + 1, settings.repeats, None, None)
    records = [
        TrialRecord(q, text, res, None, w.final_params(Genotype.from_str(text)), None, repeat=r)
        for r, search in enumerate(searches)
        for q, (text, res) in enumerate(search.history)
    ]
    repeats: list[dict[str, Any]] = [
        {
            "repeat": r,
            "genotype": search.genotype,
            "metrics": dict(search.result.metrics),
            "num_params": w.final_params(Genotype.from_str(search.genotype)),
            "queries": len(search.history),
            "asks": search.asks,
            "cheap_evaluations": n,
            "queried": search.queried,
        }
        for r, (search, n) in enumerate(zip(searches, cheap, strict=True))
    ]
    key = settings.objective
    values = {k: [rep["metrics"][k] for rep in repeats] for k in repeats[0]["metrics"]}
    best, where = w.optimum() if w.optimum is not None else (float("nan"), None)
    aggregate: dict[str, Any] = {
        "mean": {k: float(np.mean(v)) for k, v in values.items()},
        "std": {k: float(np.std(v)) for k, v in values.items()},
        "optimum": best,
        "optimum_genotype": where,
        "found_optimum": float(np.mean([v == best for v in values[key]])),
        "queries_per_repeat": settings.trials,
        "asks_mean": float(np.mean([rep["asks"] for rep in repeats])),
        "cheap_evaluations": int(sum(cheap)),
    }
    # top_k: the distinct returned architectures, best first
    top: dict[str, dict[str, Any]] = {}
    for rep in sorted(repeats, key=lambda rep: rep["metrics"][key], reverse=True):
        if rep["genotype"] not in top:
            top[rep["genotype"]] = entry(
                genotype=rep["genotype"],
                metrics=rep["metrics"],
                num_params=rep["num_params"],
                flops=w.flops(Genotype.from_str(rep["genotype"])),
            )
        if len(top) >= settings.top_k:
            break
    return write_outputs(
        run_dir,
        settings,
        records,
        score=lambda _: 0.0,  # unused: the top entries are the returned architectures
        top=list(top.values()),
        budget=w.gate.report(),
        repeats=repeats,
        aggregate=aggregate,
        cheap_evaluations=aggregate["cheap_evaluations"],
    )


__all__ = ["MODE_MODULES", "mode_class", "mode_of", "resolve_settings", "run_search"]
