"""`SearchSettings`: everything a search run is, as one frozen, JSON-round-tripping value.

`run.resolve_settings(...)` builds it from the CLI's options (checking what needs the disk:
space file, benchmark, data, checkpoint); `__post_init__` checks everything else, so a value read
back from a run's config.json (`from_json`) is validated the same way. `to_json()` is exactly
what config.json holds.

Sizes: `search_macro` is the proxy the supernet is trained and candidates are scored at;
`final_macro` the deployed network (`final_size` names it: a preset name or `C=..,layers=..`).
`budget` binds the final size. `eps` (text, e.g. "8/255") and `attack_steps` define the robust
objective `pgd{attack_steps}_acc` of a supernet search.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from robnas.errors import ConfigError, UnknownName, check_name
from robnas.specs import format_eps

MODES = ("supernet", "tabular", "macro")  # macro: a macro space (wrn), see search/macro.py
DIRECTIONS = ("maximize", "minimize")
#: Default tabular queries per search (repeat) when --trials is not given.
TABULAR_TRIALS = 100
#: Non-robust supernet objectives and their directions (the robust one is `robust_key(steps)`).
SUPERNET_METRICS = {
    "clean_acc": "maximize",
    "fsp_dist": "minimize",
    "jac_norm": "minimize",
    "density": "maximize",
    "edge_density": "maximize",
}
#: Cheap scores a supernet search may prescreen by (no accuracy on scored images).
SUPERNET_PRESCREENS = ("density", "edge_density", "fsp_dist", "jac_norm", "hessian_eig")


def robust_key(steps: int) -> str:
    """The metric key of the PGD-`steps` robust accuracy (the default supernet objective)."""
    return f"pgd{int(steps)}_acc"


def supernet_objectives(steps: int) -> dict[str, str]:
    """Objective key -> direction for a supernet search whose attack takes `steps` steps."""
    return {robust_key(steps): "maximize", **SUPERNET_METRICS}


@dataclass(frozen=True)
class SearchSettings:
    # what is searched, how, and for how long
    mode: str
    space: str
    strategy: str
    objective: str
    direction: str
    trials: int
    preset: str
    seed: int = 0
    dataset: str = "cifar10"
    repeats: int = 1
    top_k: int = 5
    prescreen: str | None = None
    prescreen_ratio: int = 4
    storage: str | None = None
    # the deployed network: the budget binds it
    budget: int | None = None
    flops_budget: int | None = None  # max multiply-adds of the deployed network (macro spaces)
    final_size: str = "paper"
    final_macro: dict[str, Any] = dataclasses.field(default_factory=dict)
    # tabular mode
    benchmark: str | None = None
    benchmark_macro: dict[str, Any] | None = None
    # supernet mode: the proxy, its training, the candidate protocol, the objective's attack
    search_macro: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    train_size: int | None = None
    val_size: int | None = None
    finetune_size: int | None = None
    score_size: int | None = None
    data_dir: str | None = None
    supernet: str | None = None
    final_train: bool = False
    eps: str = "8/255"
    attack_steps: int = 20

    def __post_init__(self) -> None:
        from robnas.config import PRESETS

        check_name("mode", self.mode, MODES)
        check_name("preset", self.preset, PRESETS)
        check_name("direction", self.direction, DIRECTIONS)
        counts = {
            "trials": self.trials,
            "repeats": self.repeats,
            "top-k": self.top_k,
            "prescreen-ratio": self.prescreen_ratio,
            "attack-steps": self.attack_steps,
        }
        low = [f"--{k}" for k, v in counts.items() if v < 1]
        if low:
            raise ConfigError(f"{', '.join(low)} must be at least 1")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"budget must be a positive count, got {self.budget}")
        self.eps_value  # noqa: B018 (parse now: a bad eps fails here, not mid-run)
        if self.flops_budget is not None and self.flops_budget < 1:
            raise ConfigError(f"flops budget must be a positive count, got {self.flops_budget}")
        if self.mode == "supernet":
            self._check_supernet()
        elif self.mode == "macro":
            self._check_macro()
        elif self.benchmark is None:
            raise ConfigError("a tabular search needs --benchmark PATH")

    def _check_supernet(self) -> None:
        if self.repeats != 1:
            raise ConfigError("--repeats needs a tabular search (--benchmark PATH)")
        objectives = supernet_objectives(self.attack_steps)
        if self.objective not in objectives:
            raise UnknownName(
                f"unknown objective {self.objective!r}; known: {', '.join(sorted(objectives))}"
                f" (a supernet search; the robust one follows --attack-steps)"
            )
        if self.direction != objectives[self.objective]:
            raise ConfigError(f"objective {self.objective} is to {objectives[self.objective]}")
        if self.prescreen is not None:
            check_name("prescreen", self.prescreen, SUPERNET_PRESCREENS)
        for key in ("train_size", "val_size", "finetune_size", "score_size"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"--{key.replace('_', '-')} must be >= 0, got {value}")
        if self.search_macro is None or self.train is None:
            raise ConfigError("a supernet search needs search_macro and train settings")

    def _check_macro(self) -> None:
        """A macro search trains each candidate at the proxy: its objective is clean or robust."""
        if self.repeats != 1 or self.prescreen is not None or self.supernet is not None:
            raise ConfigError("a macro-space search takes no --repeats, --prescreen or --supernet")
        objectives = {robust_key(self.attack_steps): "maximize", "clean_acc": "maximize"}
        if self.objective not in objectives:
            raise UnknownName(
                f"unknown objective {self.objective!r}; known: {', '.join(sorted(objectives))}"
                " (a macro-space search)"
            )
        if self.search_macro is None or self.train is None:
            raise ConfigError("a macro-space search needs search_macro and train settings")

    @property
    def eps_value(self) -> float:
        from robnas.attacks import parse_eps

        return parse_eps(self.eps)

    @property
    def eval_attack(self) -> str:
        """The registered attack that scores candidates (steps overridden by attack_steps)."""
        return "pgd20"

    def replace(self, **changes: Any) -> SearchSettings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)} in a search config; "
                "was it written by another robnas version?"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SearchSettings:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"search config is not JSON ({err})") from None
        if not isinstance(data, dict):
            raise ConfigError("search config must be a JSON object")
        return cls.from_dict(data)


__all__ = [
    "SUPERNET_METRICS",
    "SUPERNET_PRESCREENS",
    "TABULAR_TRIALS",
    "SearchSettings",
    "format_eps",
    "robust_key",
    "supernet_objectives",
]
