"""What both search modes share: FLOPs at the final size, the budget gate, the strategy, and
the trials/summary outputs of a study (written through RunDir)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robnas.genotype import Genotype
from robnas.result import Result
from robnas.search.settings import SearchSettings
from robnas.space.search_space import SearchSpace
from robnas.strategies import Strategy, make_budget_predicate, make_strategy
from robnas.strategies.prescreen import Prescreened


def flops_at(space: SearchSpace, macro: dict[str, Any], dataset: str) -> Callable[[Genotype], int]:
    def flops(genotype: Genotype) -> int:
        import torch

        from robnas.data.datasets import dataset_info
        from robnas.indicators import count_flops

        size = dataset_info(dataset).image_size
        with torch.device("meta"):
            model = space.build(genotype, macro, dataset)
        return count_flops(model, (1, 3, size, size))

    return flops


class BudgetGate:
    """The budget predicate at the final (deployed) size, counting what it refuses.

    `rejected` counts refusals (a strategy may ask about one genotype several times);
    `rejected_distinct` the distinct genotypes refused. On resume the strategy replays its
    proposals from the start, so the counts cover the whole search.
    """

    def __init__(
        self, space: SearchSpace, budget: int | None, final_macro: dict[str, Any], dataset: str
    ) -> None:
        self.budget = budget
        self.final_macro = dict(final_macro)
        self._feasible = make_budget_predicate(space, budget, final_macro, dataset)
        self.rejected = 0
        self._refused: set[str] = set()

    def __call__(self, genotype: Genotype) -> bool:
        ok = self._feasible(genotype)
        if not ok:
            self.rejected += 1
            self._refused.add(genotype.to_str())
        return bool(ok)

    @property
    def rejected_distinct(self) -> int:
        return len(self._refused)

    def report(self) -> dict[str, Any]:
        """The summary's `budget` block."""
        return {
            "limit": self.budget,
            "final_macro": self.final_macro,
            "rejected": self.rejected,
            "rejected_distinct": self.rejected_distinct,
        }


def budget_gate(settings: SearchSettings | Mapping[str, Any], space: SearchSpace) -> BudgetGate:
    s = settings.to_dict() if isinstance(settings, SearchSettings) else settings
    return BudgetGate(space, s["budget"], s["final_macro"], s["dataset"])


def build_strategy(
    settings: SearchSettings | Mapping[str, Any],
    space: SearchSpace,
    seed: int,
    cheap: Callable[[Genotype], float] | None,
    gate: BudgetGate | None = None,
) -> Strategy:
    """The settings' strategy under the budget (`gate`, built from the settings if not given;
    pass one to read its rejection counts), prescreened by `cheap` when given."""
    s = settings.to_dict() if isinstance(settings, SearchSettings) else settings
    strategy = make_strategy(
        s["strategy"],
        space,
        seed=seed,
        objective=s["objective"],
        direction=s["direction"],
        feasible=gate if gate is not None else budget_gate(s, space),
    )
    if cheap is not None:
        return Prescreened(strategy, cheap, ratio=s["prescreen_ratio"])
    return strategy


def trial_row(
    trial: int,
    genotype: str,
    result: Result,
    *,
    num_params: int | None = None,
    proxy_num_params: int | None = None,
    flops: int | None = None,
    repeat: int | None = None,
) -> dict[str, Any]:
    """One trials.csv row (RunDir.write_trials): `num_params` at the final size (default the
    result's), the proxy size's count when the candidate was scored on a smaller network."""
    row: dict[str, Any] = {} if repeat is None else {"repeat": repeat}
    row.update(
        trial=trial,
        genotype=genotype,
        status=result.status,
        num_params=result.num_params if num_params is None else num_params,
        proxy_num_params=proxy_num_params,
        flops=flops,
        seconds=round(result.seconds, 3),
    )
    row.update({k: float(v) for k, v in result.metrics.items() if k != "flops"})
    return row


def write_study_outputs(
    run_dir: Path,
    settings: SearchSettings,
    records: Sequence[Any],
    strategy: Strategy,
    *,
    final_params: Callable[[Genotype], int],
    proxy_params: Callable[[Genotype], int] | None,
    flops: Callable[[Genotype], int | None],
    gate: BudgetGate,
    final: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """trials.csv, summary.json and topk/ of a study's finished trials (`TrialRecord`s),
    through RunDir: the one shape, with parameter counts at both sizes."""
    from robnas.search.rundir import RunDir, entry, make_summary

    def sizes(record: Any) -> tuple[int, int | None, int | None]:
        g = Genotype.from_str(record.genotype)
        proxy = proxy_params(g) if proxy_params is not None else None
        return final_params(g), proxy, record.flops if record.flops is not None else flops(g)

    rows, entries = [], {}
    for r in records:
        n, proxy, f = sizes(r)
        rows.append(
            trial_row(r.number, r.genotype, r.result, num_params=n, proxy_num_params=proxy, flops=f)
        )
        entries[r.number] = entry(
            genotype=r.genotype,
            metrics=r.result.metrics,
            num_params=n,
            proxy_num_params=proxy,
            flops=f,
            trial=r.number,
        )
    ranked = sorted(
        (r for r in records if math.isfinite(strategy.score(r.result))),
        key=lambda r: strategy.score(r.result),
        reverse=True,
    )
    top = [entries[r.number] for r in ranked[: settings.top_k]]
    pareto = None
    if strategy.multi_objective:
        pareto, smallest = [], math.inf
        for r in ranked:  # best objective first: keep those smaller than every better one
            if entries[r.number]["num_params"] < smallest:
                pareto.append(entries[r.number])
                smallest = entries[r.number]["num_params"]
    summary = make_summary(
        settings,
        trials=len(records),
        failed=sum(not r.result.ok for r in records),
        best=top[0] if top else None,
        top_k=top,
        budget=gate.report(),
        pareto=pareto,
        final=final,
    )
    rundir = RunDir(run_dir)
    rundir.write_trials(rows)
    rundir.write_summary(summary)
    return summary
