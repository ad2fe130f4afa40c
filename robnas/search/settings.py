"""A search's settings: one small frozen type per mode, each a JSON round trip (config.json).

    SearchSettings    what every mode has: the space, strategy, objective and its direction,
                      trials, preset, seed, dataset, top-k, prescreen, storage, and the budget
                      with the final (deployed) size it binds
    TabularSettings   mode "tabular": lookups in the NB201 robustness dataset (`benchmark`, the
                      size of its networks, `repeats` independent searches)
    NetworkSettings   what the network modes add: the proxy size (`search_macro`), the training
                      (`train`) and per-candidate (`finetune`) schedules, the data, and the
                      attack the robust objective is measured with (`eps`, `attack_steps`)
    SupernetSettings  mode "supernet": the weight-sharing supernet, the candidate protocol,
                      optional training of the winner
    MacroSettings     mode "macro": whole networks trained at a proxy; a FLOPs budget too

`to_dict()` is exactly what config.json holds, with "mode" naming the type;
`settings_from_dict` reads any mode back and validates it as the constructor does. The
objective is the metric key the evaluator reports (`pgd20_acc`, `fgsm_acc`, `clean_acc`,
`fgsm@1` in a tabular search): the user's spelling (`fgsm@1`, `pgd@8`) is resolved once by
`robnas.search.pipeline.resolve_settings`.

Configs written before the settings were split by mode hold the other modes' fields at their
defaults (`"benchmark": null` in a supernet run): those are read and dropped; any other value
of a field the mode does not have is refused with one line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from robnas.config import TrainConfig, get_preset
from robnas.errors import ConfigError, RobnasError, UnknownName, check_name
from robnas.objectives.protocols import OBJECTIVE_KEY, check_protocol
from robnas.specs import (
    DEFAULT_ATTACK_STEPS,
    DEFAULT_EPS,
    NETWORK_METRICS,
    AttackSpec,
    Budget,
    DataSpec,
    Eps,
    attack_of_metric,
)

DIRECTIONS = ("maximize", "minimize")
#: Default tabular queries per search (repeat) when --trials is not given.
TABULAR_TRIALS = 100
#: Cheap scores a supernet search may prescreen by (no accuracy on scored images).
SUPERNET_PRESCREENS = ("density", "edge_density", "fsp_dist", "jac_norm", "hessian_eig")
#: Cheap scores a tabular search may prescreen by: structural, computed from the genotype alone.
TABULAR_PRESCREENS = ("density", "edge_density")
#: Every field of the settings before they were split by mode, with its default then: a config
#: written by that version holds the other modes' fields at these values.
LEGACY_DEFAULTS: dict[str, Any] = {
    "repeats": 1,
    "benchmark": None,
    "benchmark_macro": None,
    "flops_budget": None,
    "search_macro": None,
    "train": None,
    "finetune": None,
    "train_size": None,
    "val_size": None,
    "finetune_size": None,
    "score_size": None,
    "data_dir": None,
    "supernet": None,
    "final_train": False,
    "eps": "8/255",
    "attack_steps": 20,
    "prescreen": None,
    "prescreen_ratio": 4,
}


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"search config is not JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError("search config must be a JSON object")
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, Eps):
        return str(value)
    if isinstance(value, TrainConfig):
        return value.to_dict()
    return json.loads(json.dumps(value))


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """The fields every mode has (a mode's type adds its own; see the module docstring)."""

    mode: ClassVar[str] = ""
    #: cheap scores this mode may prescreen proposals by
    prescreens: ClassVar[tuple[str, ...]] = ()

    space: str
    strategy: str
    objective: str
    direction: str = "maximize"
    trials: int
    preset: str
    seed: int = 0
    dataset: str = "cifar10"
    top_k: int = 5
    prescreen: str | None = None
    prescreen_ratio: int = 4
    storage: str | None = None
    # the deployed network: the budget binds it
    budget: int | None = None
    final_size: str = "paper"
    final_macro: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_preset(self.preset)
        check_name("direction", self.direction, DIRECTIONS)
        low = [f"--{k}" for k, v in self._counts().items() if v < 1]
        if low:
            raise ConfigError(f"{', '.join(low)} must be at least 1")
        self.budget_spec  # noqa: B018 (a budget below 1 fails here)
        if self.prescreen is not None:
            if not self.prescreens:
                raise ConfigError(f"a {self.mode} search has no cheap score to --prescreen by")
            check_name("prescreen", self.prescreen, self.prescreens)

    def _counts(self) -> dict[str, int]:
        return {"trials": self.trials, "top-k": self.top_k, "prescreen-ratio": self.prescreen_ratio}

    @property
    def budget_spec(self) -> Budget:
        return Budget(self.budget)

    # -- JSON ------------------------------------------------------------------------------------

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The settings a config.json holds (validated; legacy fields at defaults dropped)."""
        data = dict(data)
        mode = data.pop("mode", cls.mode)
        if mode != cls.mode:
            raise ConfigError(f"config of a {mode} search read as a {cls.mode} search")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in names and k not in LEGACY_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)} in a search config; "
                "was it written by another robnas version?"
            )
        foreign = [k for k in data if k not in names and data[k] != LEGACY_DEFAULTS[k]]
        if foreign:
            key = sorted(foreign)[0]
            raise ConfigError(
                f"setting {key}={data[key]!r} does not apply to a {cls.mode} search; "
                "is the config.json edited by hand?"
            )
        values = {k: v for k, v in data.items() if k in names}
        try:
            return cls(**cls._read(values))
        except TypeError as err:  # a required field missing
            raise ConfigError(f"a {cls.mode} search config is incomplete ({err})") from None

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        """JSON values as the fields hold them (a mode's type reads its own)."""
        return values

    @classmethod
    def from_json(cls, text: str) -> Any:
        return cls.from_dict(_json_object(text))


@dataclass(frozen=True, kw_only=True)
class TabularSettings(SearchSettings):
    """Lookups in the NB201 robustness dataset; `objective` is a dataset column (`fgsm@1`)."""

    mode: ClassVar[str] = "tabular"
    prescreens: ClassVar[tuple[str, ...]] = TABULAR_PRESCREENS

    benchmark: str
    #: the size of the dataset's networks (NB201: C=16, N=5)
    benchmark_macro: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1

    def _counts(self) -> dict[str, int]:
        return {**super()._counts(), "repeats": self.repeats}


@dataclass(frozen=True, kw_only=True)
class NetworkSettings(SearchSettings):
    """Network searches: candidates are trained (or finetuned) and attacked on held-out images."""

    #: metrics the mode's evaluator reports besides the attack's accuracy, with directions
    metrics: ClassVar[dict[str, str]] = {}

    # the proxy: the size candidates are trained and scored at
    search_macro: dict[str, Any]
    train: TrainConfig
    finetune: TrainConfig | None = None
    # data: held out of the training split (never the test split)
    train_size: int | None = None
    val_size: int | None = None
    score_size: int | None = None
    data_dir: str | None = None
    # the attack of the robust objective (its metric key says which: pgd<steps>_acc, fgsm_acc)
    eps: Eps = DEFAULT_EPS
    attack_steps: int = DEFAULT_ATTACK_STEPS

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.eps, Eps):
            object.__setattr__(self, "eps", Eps.parse(self.eps))
        self.data  # noqa: B018 (train and held-out sizes of at least 1)
        if self.score_size is not None and self.score_size < 0:
            raise ConfigError(f"--score-size must be >= 0, got {self.score_size}")
        attack = self.attack  # a bad attack (FGSM with steps) fails here
        objectives = {attack.metric: "maximize", **self.metrics}
        if self.objective not in objectives:
            raise UnknownName(
                f"unknown objective {self.objective!r}; known: {', '.join(sorted(objectives))}"
                f" (a {self.mode} search; the robust one follows --attack-steps)"
            )
        if self.direction != objectives[self.objective]:
            raise ConfigError(f"objective {self.objective} is to {objectives[self.objective]}")

    def _counts(self) -> dict[str, int]:
        return {**super()._counts(), "attack-steps": self.attack_steps}

    @property
    def attack(self) -> AttackSpec:
        """The attack candidates are measured with: the objective's, else PGD."""
        return AttackSpec(attack_of_metric(self.objective) or "pgd", self.eps, self.attack_steps)

    @property
    def data(self) -> DataSpec:
        """The images the search reads (the held-out part class-balanced)."""
        return DataSpec(self.dataset, self.data_dir, self.train_size, self.val_size)

    @classmethod
    def _read(cls, values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        if isinstance(out.get("eps"), str):
            out["eps"] = Eps.parse(out["eps"])
        for key in ("train", "finetune"):
            if isinstance(out.get(key), dict):
                try:
                    out[key] = TrainConfig(**out[key])
                except TypeError as err:
                    raise ConfigError(
                        f"cannot read the {key} schedule of a config ({err})"
                    ) from None
        return out


@dataclass(frozen=True, kw_only=True)
class SupernetSettings(NetworkSettings):
    """A supernet search (RobNet's): candidates inherit the supernet's weights, are finetuned
    on `finetune_size` images and scored on `score_size` held-out ones."""

    mode: ClassVar[str] = "supernet"
    prescreens: ClassVar[tuple[str, ...]] = SUPERNET_PRESCREENS
    metrics: ClassVar[dict[str, str]] = NETWORK_METRICS

    finetune_size: int | None = None
    #: a trained supernet checkpoint to reuse (None: train one in the run directory)
    supernet: str | None = None
    final_train: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finetune_size is not None and self.finetune_size < 0:
            raise ConfigError(f"--finetune-size must be >= 0, got {self.finetune_size}")


@dataclass(frozen=True, kw_only=True)
class MacroSettings(NetworkSettings):
    """A macro-space search: every candidate trains from scratch at the proxy (`finetune` is
    the low fidelity, `train` the full one the promising half reaches); both budgets bind the
    deployed size."""

    mode: ClassVar[str] = "macro"
    metrics: ClassVar[dict[str, str]] = {"clean_acc": "maximize"}

    flops_budget: int | None = None  # max multiply-adds of the deployed network

    @property
    def budget_spec(self) -> Budget:
        return Budget(self.budget, self.flops_budget)


@dataclass(frozen=True, kw_only=True)
class ProtocolSettings(SearchSettings):
    """mode "protocol": an NB201 network search whose candidates are scored by a protocol
    (`ranker`: NASWOT at the deployed size and path counts; `lowfi`: a short normal training)
    and ranked by the declared objective of `target` (robnas.objectives.protocols), which the
    evaluator reports under the metric key `objective`."""

    mode: ClassVar[str] = "protocol"

    protocol: str
    target: str
    data_dir: str | None = None
    #: the low-fidelity protocol's fidelity (robnas.evaluators.lowfi.FIDELITIES)
    fidelity: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()

        check_protocol(self.protocol, self.target)
        if self.protocol == "supernet":
            raise ConfigError("the supernet protocol is a supernet search (mode supernet)")
        if self.objective != OBJECTIVE_KEY or self.direction != "maximize":
            raise ConfigError(f"a protocol search maximises the metric {OBJECTIVE_KEY!r}")
        if (self.fidelity is None) != (self.protocol != "lowfi"):
            raise ConfigError("a fidelity is set for the lowfi protocol, and only for it")


SETTINGS_TYPES: dict[str, type[SearchSettings]] = {
    cls.mode: cls for cls in (SupernetSettings, TabularSettings, MacroSettings, ProtocolSettings)
}
MODES = tuple(SETTINGS_TYPES)


def settings_from_dict(data: dict[str, Any]) -> SearchSettings:
    """The settings of any mode from a config.json dict ("mode" says which)."""
    mode = data.get("mode")
    if not isinstance(mode, str):
        raise ConfigError("a search config names its mode (supernet, tabular, macro or protocol)")
    return SETTINGS_TYPES[check_name("mode", mode, SETTINGS_TYPES)].from_dict(data)


def settings_from_json(text: str) -> SearchSettings:
    return settings_from_dict(_json_object(text))


def normalized(config: dict[str, Any]) -> dict[str, Any]:
    """A config.json dict as its settings write it now (legacy fields dropped, new ones at
    their defaults); the dict unchanged if it is no search config of a known mode."""
    if config.get("mode") not in SETTINGS_TYPES:
        return config
    try:
        return settings_from_dict(config).to_dict()
    except RobnasError:
        return config


__all__ = [
    "MODES",
    "SETTINGS_TYPES",
    "SUPERNET_PRESCREENS",
    "TABULAR_PRESCREENS",
    "TABULAR_TRIALS",
    "MacroSettings",
    "NetworkSettings",
    "ProtocolSettings",
    "SearchSettings",
    "SupernetSettings",
    "TabularSettings",
    "normalized",
    "settings_from_dict",
    "settings_from_json",
]
