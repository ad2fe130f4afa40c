"""What a search mode gives the one pipeline (`robnas.search.pipeline`).

A mode (supernet, macro, tabular) is three steps over its own settings type:

    resolve(request, space, preset)  the request as the mode's settings; checks everything
                                     that needs no data, writes nothing
    check()                          reads what the search needs (images, a checkpoint, the
                                     benchmark) and refuses what does not fit; writes nothing
    wire()                           the parts the pipeline runs (`Wiring`): it may write under
                                     the run directory (a supernet trains there)

The pipeline writes config.json between `check` and `wire`, so a bad run directory or a bad
input fails before anything trains, and nothing is written when an input is refused.

What every mode resolves alike lives here too: the fields every settings type has
(`common_fields`: the space, the final size and the budget at it) and, for the network modes,
the objective and the training schedule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from robnas.config import Preset, TrainConfig, with_overrides
from robnas.errors import ConfigError
from robnas.evaluators.base import Evaluator
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.search.common import BudgetGate, flops_at
from robnas.search.request import SearchRequest
from robnas.search.settings import SearchSettings
from robnas.space.search_space import SearchSpace
from robnas.specs import NetworkObjective, default_objective

S = TypeVar("S", bound=SearchSettings)
Phase = Callable[[str], None]


def quiet(_: str) -> None:
    """A phase reporter that reports nothing."""


@dataclass
class Wiring:
    """The parts of one search the pipeline runs a strategy over: what scores, what refuses
    (the budget), what sizes, and what the mode adds (a cheap score, an optimum, a finish)."""

    space: SearchSpace
    evaluator: Evaluator
    gate: BudgetGate
    #: parameters at the final (deployed) size, what the budget binds
    final_params: Callable[[Genotype], int]
    #: multiply-adds at the final size
    flops: Callable[[Genotype], int]
    #: parameters at the size candidates are scored at, when that is another size
    proxy_params: Callable[[Genotype], int] | None = None
    #: a cheap score to prescreen proposals by (higher is better)
    cheap: Callable[[Genotype], float] | None = None
    #: the best value a search within the budget can reach, and a genotype reaching it
    optimum: Callable[[], tuple[float, str]] | None = None
    #: after the search: train the winner (its genotype string) and report it
    finish: Callable[[str], dict[str, Any]] | None = None

    @classmethod
    def of(
        cls,
        settings: SearchSettings,
        space: SearchSpace,
        evaluator: Evaluator,
        *,
        proxy: dict[str, Any] | None = None,
        **parts: Any,
    ) -> Wiring:
        """The parts sized by the settings: the budget gate, parameter counts and FLOPs at
        the final size, parameter counts at the `proxy` size candidates are scored at."""
        final, dataset = settings.final_macro, settings.dataset
        return cls(
            space=space,
            evaluator=evaluator,
            gate=BudgetGate(space, settings.budget_spec, final, dataset),
            final_params=lambda g: sizing.num_params(space, g, final, dataset),
            flops=flops_at(space, final, dataset),
            proxy_params=None
            if proxy is None
            else lambda g: sizing.num_params(space, g, proxy, dataset),
            **parts,
        )


class Mode(ABC, Generic[S]):
    name: ClassVar[str]
    settings_type: ClassVar[type[SearchSettings]]
    #: the preset a request without --preset uses
    default_preset: ClassVar[str] = "tiny"

    def __init__(
        self,
        settings: S,
        run_dir: Path,
        *,
        phase: Phase = quiet,
        train_progress: Callable[[Any], None] | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.phase = phase
        self.train_progress = train_progress

    @classmethod
    @abstractmethod
    def resolve(cls, request: SearchRequest, space: SearchSpace, preset: Preset) -> S:
        """The request as this mode's settings (a RobnasError for what does not fit)."""

    def check(self) -> None:  # noqa: B027 (a mode with nothing to read keeps this)
        """Read what the search needs and refuse what does not fit; write nothing."""

    @abstractmethod
    def wire(self) -> Wiring:
        """The parts the pipeline runs (after config.json is written)."""


def final_size(space: SearchSpace, request: SearchRequest, preset: Preset) -> tuple[str, dict]:
    """(label, macro) of the deployed network: `--final-size`, else the preset's (`default`
    when the space has no size of that name)."""
    size = request.final_size or preset.default_size("final_size")
    macro = space.resolve_size(size)
    missing = size.fallback and size.name not in space.sizes
    return ("default" if missing else str(size)), macro


def common_fields(request: SearchRequest, space: SearchSpace, preset: Preset) -> dict[str, Any]:
    """The fields every settings type has; the budget is checked against the smallest network
    of the space at the final size here (BudgetError), before anything is read."""
    label, final_macro = final_size(space, request, preset)
    BudgetGate(space, request.budget, final_macro, request.data.dataset)
    text = request.space
    return {
        "space": space.name if "/" not in text and not text.endswith(".toml") else text,
        "strategy": request.strategy.lower(),
        "preset": preset.name,
        "seed": request.seed,
        "dataset": request.data.dataset,
        "top_k": request.top_k,
        "prescreen": request.prescreen,
        "prescreen_ratio": request.prescreen_ratio,
        "storage": request.storage,
        "budget": request.budget.params,
        "final_size": label,
        "final_macro": final_macro,
    }


def network_objective(request: SearchRequest, metrics: dict[str, str]) -> NetworkObjective:
    """What a network search optimises and the attack it measures: `--objective` (default
    the PGD accuracy, PGD-20 at 8/255), `--eps` and `--attack-steps`."""
    if request.objective is None:
        return default_objective(eps=request.eps, steps=request.attack_steps)
    return request.objective.network(eps=request.eps, steps=request.attack_steps, metrics=metrics)


def training(request: SearchRequest, preset: Preset, **changes: Any) -> TrainConfig:
    """The preset's schedule with `--epochs` and `--method` (how the supernet and candidates
    train; `clean` trains without an attack), seeded by `--seed`."""
    values = {"seed": request.seed, "epochs": request.epochs, "method": request.method}
    return with_overrides(preset.train, **{**values, **changes})


def proxy_size(space: SearchSpace, request: SearchRequest, preset: Preset) -> dict[str, Any]:
    """The proxy a network search trains and scores at: `--size`, else the preset's."""
    return space.resolve_size(request.size or preset.default_size("search_size"))


def refuse(flags: dict[str, Any], why: str) -> None:
    """ConfigError naming the given flags (a value other than None/False) and why."""
    given = [flag for flag, value in flags.items() if value not in (None, False)]
    if given:
        raise ConfigError(f"{', '.join(given)} {why}")


__all__ = [
    "Mode",
    "Phase",
    "Wiring",
    "common_fields",
    "final_size",
    "network_objective",
    "proxy_size",
    "quiet",
    "refuse",
    "training",
]
