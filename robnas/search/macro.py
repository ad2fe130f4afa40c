"""Macro-space searches (`robnas search --space wrn`): whole networks, each candidate trained at a
small proxy and scored by PGD, under parameter and FLOPs budgets at the deployed size.

    robnas search --space wrn --budget 20M --flops-budget 5G --preset tiny \\
        --strategy regularized_evolution --out runs/wrn

Settings (`SearchSettings`, mode "macro"): `final_macro` is the deployed size (the space's
default: the genotype as named) which `budget` (parameters) and `flops_budget` (multiply-adds)
bind; `search_macro` the proxy (the space preset named by the preset's search size: tiny, small).
`finetune` is the low-fidelity schedule every candidate gets (the preset's finetune epochs,
`--finetune-epochs`), `train` the full fidelity the promising half reaches (`--epochs`,
default twice the low fidelity). Candidates train on `train_size` images and are scored on
`score_size` images held out of the training split (`val_size`), never the test split.
Every strategy but `surrogate` (its kernel compares cell edges) searches a macro space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robnas.errors import BudgetError, ConfigError
from robnas.genotype import Genotype
from robnas.search.common import BudgetGate, build_strategy, write_study_outputs
from robnas.search.settings import SearchSettings, format_eps, robust_key
from robnas.search.study import Progress, Study
from robnas.space.budget import format_count, parse_budget
from robnas.space.macro import MacroSpace
from robnas.space.search_space import SearchSpace, get_space

log = logging.getLogger(__name__)

#: strategies whose model reads cell structure (edges, paths) and cannot search a macro space
CELL_ONLY_STRATEGIES = ("surrogate",)


class MacroBudgetGate(BudgetGate):
    """The parameter budget (BudgetGate) and a FLOPs budget, both at the deployed size."""

    def __init__(
        self,
        space: MacroSpace,
        budget: int | None,
        flops_budget: int | None,
        final_macro: dict[str, Any],
        dataset: str,
    ) -> None:
        super().__init__(space, budget, final_macro, dataset)
        self.flops_budget = flops_budget
        if flops_budget is None:
            return
        minimum = space.min_flops(final_macro, dataset)
        if flops_budget < minimum:
            raise BudgetError(
                f"FLOPs budget {format_count(flops_budget)} is below the smallest {space.name} "
                f"network ({format_count(minimum)} multiply-adds); raise --flops-budget"
            )
        within_params = self._feasible

        def feasible(genotype: Genotype) -> bool:
            return within_params(genotype) and (
                space.flops(genotype, final_macro, dataset) <= flops_budget
            )

        self._feasible = feasible

    def report(self) -> dict[str, Any]:
        return {**super().report(), "flops_limit": self.flops_budget}


def _macro_space(space: SearchSpace) -> MacroSpace:
    if not isinstance(space, MacroSpace):
        raise ConfigError(f"space {space.name} is a cell space, not a macro space")
    return space


def resolve_macro_settings(sp: SearchSpace, **o: Any) -> SearchSettings:
    """`run.resolve_settings` for a macro space: validated settings, nothing written."""
    from robnas.attacks import parse_eps
    from robnas.config import get_preset, with_overrides
    from robnas.data.datasets import resolve_data_dir
    from robnas.errors import check_name
    from robnas.strategies import STRATEGIES

    space = _macro_space(sp)
    strategy = o["strategy"].lower()
    STRATEGIES.get(strategy)
    if strategy in CELL_ONLY_STRATEGIES:
        raise ConfigError(
            f"strategy {strategy} models cell edges; search {space.name} with random, "
            "regularized_evolution, local_search, tpe or nsga2"
        )
    for flag, given in (("--benchmark", o["benchmark"]), ("--final-train", o["final_train"])):
        if given:
            raise ConfigError(
                f"{flag} does not apply to a macro-space search; train the winner with "
                f"`robnas train '{space.name}:depths=...'`"
            )
    p = get_preset(o["preset"] if o["preset"] is not None else "tiny")
    final_size = o["final_size"]
    if final_size is not None:
        check_name("size", final_size, space.sizes)
    final_macro = space.resolve_macro(final_size)
    budget = parse_budget(o["budget"]) if o["budget"] is not None else None
    flops = parse_budget(o["flops_budget"]) if o["flops_budget"] is not None else None
    MacroBudgetGate(space, budget, flops, final_macro, o["dataset"])  # BudgetError if too low
    steps = o["attack_steps"] if o["attack_steps"] is not None else 20
    low = (
        o["finetune_epochs"]
        if o["finetune_epochs"] is not None
        else max(1, p.candidates.finetune_epochs)
    )
    if low < 1:
        raise ConfigError("--finetune-epochs (the low fidelity) must be at least 1 here")
    full = with_overrides(p.train, seed=o["seed"], epochs=o["epochs"] or 2 * low)
    low_cfg = with_overrides(
        full,
        epochs=low,
        warmup_epochs=min(full.warmup_epochs, low),
        clean_epochs=min(full.clean_epochs, low),
    )
    settings = SearchSettings(
        mode="macro",
        space=space.name if "/" not in o["space"] else o["space"],
        strategy=strategy,
        objective=o["objective"] or robust_key(steps),
        direction="maximize",
        trials=o["trials"] if o["trials"] is not None else p.candidates.trials,
        preset=p.name,
        seed=o["seed"],
        dataset=o["dataset"],
        top_k=o["top_k"],
        prescreen=o["prescreen"],
        prescreen_ratio=o["prescreen_ratio"],
        storage=o["storage"],
        budget=budget,
        flops_budget=flops,
        final_size=final_size or "default",
        final_macro=final_macro,
        search_macro=space.resolve_size(p.default_size("search_size")),
        train=full.to_dict(),
        finetune=low_cfg.to_dict(),
        train_size=o["train_size"] if o["train_size"] is not None else p.candidates.finetune_images,
        val_size=o["val_size"] if o["val_size"] is not None else p.val_images,
        score_size=p.candidates.score_images,
        data_dir=o["data_dir"],
        supernet=o["supernet"],
        eps=format_eps(parse_eps(o["eps"] if o["eps"] is not None else "8/255")),
        attack_steps=steps,
        repeats=o["repeats"],
    )  # validates objective, repeats, prescreen
    resolve_data_dir(o["data_dir"])
    return settings


def run_macro(
    settings: SearchSettings,
    run_dir: Path,
    storage: str | None,
    progress: Progress | None,
    *,
    phase: Callable[[str], None] = lambda _: None,
    train_progress: Callable[[Any], None] | None = None,  # candidates train quietly
) -> dict[str, Any]:
    from robnas.config import TrainConfig
    from robnas.data.datasets import load_dataset, split_train_val
    from robnas.evaluators.macro import MacroEvaluator
    from robnas.search.rundir import RunDir

    space = _macro_space(get_space(settings.space))
    dataset, seed = settings.dataset, settings.seed
    proxy, final_macro = dict(settings.search_macro or {}), settings.final_macro
    n_train, n_val = settings.train_size, settings.val_size or 0
    limit = n_train + n_val if n_train is not None else None
    data = load_dataset(dataset, "train", data_dir=settings.data_dir, limit=limit, seed=seed)
    train_data, val_data = split_train_val(data, n_val, seed)  # never the test split
    n_score = settings.score_size
    score_data = val_data.subset(min(n_score, len(val_data)), seed) if n_score else val_data
    RunDir(run_dir).init(settings)
    full_cfg = TrainConfig(**(settings.train or {}))
    evaluator = MacroEvaluator(
        space,
        proxy,
        train_data,
        score_data,
        TrainConfig(**(settings.finetune or settings.train or {})),
        full_cfg,
        objective=settings.objective,
        final_macro=final_macro,
        dataset=dataset,
        eval_eps=settings.eps_value,
        eval_steps=settings.attack_steps,
        batch_size=min(128, full_cfg.batch_size),
        seed=seed,
    )
    gate = MacroBudgetGate(space, settings.budget, settings.flops_budget, final_macro, dataset)
    strategy = build_strategy(settings, space, seed, None, gate=gate)

    def final_params(g: Genotype) -> int:
        return space.num_params(g, final_macro, dataset)

    def proxy_params(g: Genotype) -> int:
        return space.num_params(g, proxy, dataset)

    def flops(g: Genotype) -> int:
        return space.flops(g, final_macro, dataset)

    study = Study(
        run_dir,
        settings.to_dict(),
        evaluator,
        strategy,
        storage,
        flops=flops,
        final_params=final_params,
        proxy_params=proxy_params,
    )
    phase("searching")
    study.run(settings.trials, progress=progress)
    return write_study_outputs(
        run_dir,
        settings,
        study.records(),
        strategy,
        final_params=final_params,
        proxy_params=proxy_params,
        flops=flops,
        gate=gate,
    )
