"""`SearchRequest`: what a user asked `robnas search` for, as parsed values (nothing resolved).

The CLI parses each flag once into its value (`robnas.specs`) and hands one request to
`resolve_settings`, which picks the mode (tabular with a benchmark, macro for a macro space,
else supernet) and fills what was not given from the preset. None means "not given": the mode's
default applies, and a mode refuses the options that do not apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from robnas.config import Preset
from robnas.specs import Budget, DataSpec, Eps, Objective, Size


@dataclass(frozen=True)
class SearchRequest:
    space: str = "darts"
    strategy: str = "random"
    preset: Preset | None = None
    objective: Objective | None = None
    budget: Budget = Budget()
    #: the proxy a network search trains and scores candidates at (default: the preset's)
    size: Size | None = None
    #: the deployed network the budget binds (default: the preset's, the paper size)
    final_size: Size | None = None
    data: DataSpec = DataSpec()
    #: the robust objective's attack (`--eps`, `--attack-steps`; an `@` objective names its eps)
    eps: Eps | None = None
    attack_steps: int | None = None
    #: how the supernet and the candidates train (`--method`; default the preset's)
    method: str | None = None
    epochs: int | None = None
    finetune_epochs: int | None = None
    trials: int | None = None
    seed: int = 0
    top_k: int = 5
    prescreen: str | None = None
    prescreen_ratio: int = 4
    repeats: int = 1
    benchmark: str | None = None
    #: how an NB201 network search scores candidates (`ranker`, `lowfi`, `supernet`; None: the
    #: supernet search)
    protocol: str | None = None
    supernet: str | None = None
    final_train: bool = False
    storage: str | None = None


__all__ = ["SearchRequest"]
