"""Small values the command line is parsed into once: eps, attack, objective, size, budget, data.

Every flag that names one of these becomes its value at the CLI edge (or when a config.json is
read back) and travels as that value, never as text to be parsed again. Each value parses its
one grammar, prints itself in the same grammar, and refuses bad input with one line that says
what to write (a `RobnasError`). Torch-free: the CLI parses before anything heavy is imported.

    Eps        an L-inf radius: `8/255`, `0.5/255`, `0.03`; prints as a fraction of 255 when
               that text reads back to exactly the same float, else as the decimal
    AttackSpec the attack that measures a robust accuracy (`pgd`, `fgsm`), its eps and steps;
               it owns the metric key (`pgd20_acc`, `fgsm_acc`)
    Objective  what a search optimises, as users type it in every mode: `clean`, `fgsm@1`,
               `pgd@8` (eps in 1/255, as the NB201 robustness dataset names its columns),
               `fog@3` (a corruption severity: the dataset only), or a metric key
               (`pgd20_acc`, `clean_acc`, `fsp_dist`, ...)
    Size       a network size: a size name of the space (`tiny`), counts (`C=16,layers=8`,
               `C=16,N=5`) or both (`tiny,C=12`)
    Budget     the deployed network's limits: parameters (`5M`) and optionally FLOPs (`5G`)
    DataSpec   the images a command trains and validates on: dataset, folder, split sizes
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robnas.errors import BudgetError, ConfigError, UnknownName, check_name

# -- eps -------------------------------------------------------------------------------------------

_EPS_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([0-9]*\.?[0-9]+))?\s*$")


def _read_eps(text: str) -> float:
    match = _EPS_RE.match(text)
    if not match:
        raise ConfigError(f"cannot read eps {text!r}; write it like 8/255 or 0.03")
    num, den = match.groups()
    if den is not None and float(den) == 0:
        raise ConfigError(f"eps {text!r} divides by zero; write it like 8/255")
    return float(num) / float(den) if den is not None else float(num)


def format_eps(value: float) -> str:
    """`8/255` (or `0.5/255`) when that text reads back to exactly `value`, else the decimal
    (`0.03`, which is not exactly 7.65/255 in floating point)."""
    value = float(value)
    scaled = value * 255
    for digits in range(4):
        text = f"{round(scaled, digits):.{digits}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if float(text) / 255 == value:
            return f"{text}/255"
    return repr(value)


class Eps(float):
    """An L-inf radius in [0, 1] (images are in [0, 1]): a float with one printed form."""

    def __new__(cls, value: float) -> Eps:
        number = float(value)
        if not math.isfinite(number) or not 0 <= number <= 1:
            raise ConfigError(f"eps must lie in [0, 1] (images are in [0, 1]), got {value!r}")
        return super().__new__(cls, number)

    @classmethod
    def parse(cls, text: str | float, *, allow_zero: bool = False) -> Eps:
        """`8/255`, `0.03` or a number; in (0, 1], or [0, 1] with `allow_zero` (0: no attack)."""
        value = float(text) if isinstance(text, (int, float)) else _read_eps(text)
        low, ok = ("[0", value >= 0) if allow_zero else ("(0", value > 0)
        if not math.isfinite(value) or not ok or value > 1:
            raise ConfigError(f"eps must lie in {low}, 1] (images are in [0, 1]), got {text!r}")
        return cls(value)

    @classmethod
    def of_255(cls, level: float) -> Eps:
        """`level`/255, computed as parsing `level/255` does (`Eps.of_255(8) == Eps.parse("8/255")`)."""
        return cls.parse(f"{level:g}/255")

    def __str__(self) -> str:
        return format_eps(self)

    def __repr__(self) -> str:
        return f"Eps({format_eps(self)!r})"

    def __reduce__(self) -> tuple[type, tuple[float]]:
        # pickled (checkpoints, copies) as the plain float: readers need not know this class
        return (float, (float(self),))


#: The one default radius: RobNet's (and most robustness papers') CIFAR-10 L-inf eps.
DEFAULT_EPS = Eps.parse("8/255")
#: Steps of the PGD attack that scores candidates (RobNet evaluates with PGD-20).
DEFAULT_ATTACK_STEPS = 20


def parse_eps(text: str | float, *, allow_zero: bool = False) -> float:
    """`Eps.parse` as a plain float (for callers that want the number)."""
    return float(Eps.parse(text, allow_zero=allow_zero))


# -- attacks ---------------------------------------------------------------------------------------

#: The attacks a network search can measure candidates with.
ATTACK_NAMES = ("fgsm", "pgd")


@dataclass(frozen=True)
class AttackSpec:
    """The attack that measures a robust accuracy. PGD takes `steps` steps of eps/4 (RobNet's
    2/255 at 8/255) from a random start; FGSM is one step (its `steps` is 1)."""

    name: str = "pgd"
    eps: Eps = DEFAULT_EPS
    steps: int = DEFAULT_ATTACK_STEPS

    def __post_init__(self) -> None:
        check_name("attack", self.name, ATTACK_NAMES)
        if not isinstance(self.eps, Eps):
            object.__setattr__(self, "eps", Eps(self.eps))
        if self.steps < 1:
            raise ConfigError(f"--attack-steps must be at least 1, got {self.steps}")
        if self.name == "fgsm" and self.steps != 1:
            raise ConfigError("FGSM takes one step; --attack-steps sets PGD's steps")

    @property
    def metric(self) -> str:
        """The accuracy key this attack's results are stored under (`pgd20_acc`, `fgsm_acc`)."""
        return f"pgd{self.steps}_acc" if self.name == "pgd" else f"{self.name}_acc"

    @property
    def options(self) -> dict[str, Any]:
        """Constructor options of the registered attack `name` (besides eps and seed)."""
        return {"steps": self.steps, "alpha": self.eps / 4} if self.name == "pgd" else {}

    def __str__(self) -> str:
        steps = f"-{self.steps}" if self.name == "pgd" else ""
        return f"{self.name.upper()}{steps} at {self.eps}"


def attack_of_metric(metric: str) -> str | None:
    """The attack whose accuracy `metric` is (`pgd20_acc` -> pgd, `fgsm_acc` -> fgsm), or None."""
    if metric == "fgsm_acc":
        return "fgsm"
    return "pgd" if _PGD_KEY.match(metric) else None


# -- objectives ------------------------------------------------------------------------------------

_PGD_KEY = re.compile(r"^pgd(\d+)_acc$")
_KEY = re.compile(r"^[a-z][a-z0-9_\-]*$")
#: How objectives are written (for messages).
OBJECTIVE_FORMS = "clean, <attack>@<eps in 1/255> (fgsm@1, pgd@8), <corruption>@<severity> or a metric key (pgd20_acc, fsp_dist)"
#: Metrics a network evaluator reports beside the attack's accuracy, with their directions.
NETWORK_METRICS: dict[str, str] = {
    "clean_acc": "maximize",
    "fsp_dist": "minimize",
    "jac_norm": "minimize",
    "density": "maximize",
    "edge_density": "maximize",
}


@dataclass(frozen=True)
class NetworkObjective:
    """An objective as a network search measures it: the metric key the evaluator reports, its
    direction, and the attack the evaluator runs (the objective's own, or the default PGD)."""

    metric: str
    direction: str
    attack: AttackSpec


@dataclass(frozen=True)
class Objective:
    """What a search optimises, normalised (`FGSM@1.0`, `fgsm@1/255` -> `fgsm@1`)."""

    key: str

    @classmethod
    def parse(cls, text: str) -> Objective:
        raw = str(text).strip().lower()
        name, sep, level = raw.partition("@")
        if sep:
            level = level.removesuffix("/255")
            try:
                value = float(level)
            except ValueError:
                value = math.nan
            if not name or not math.isfinite(value) or value < 0:
                raise UnknownName(f"cannot read objective {text!r}: write {OBJECTIVE_FORMS}")
            return cls(f"{name}@{value:g}")
        if not _KEY.match(raw):
            raise UnknownName(f"cannot read objective {text!r}: write {OBJECTIVE_FORMS}")
        return cls(raw)

    @property
    def name(self) -> str:
        """The part before `@` (`fgsm` of `fgsm@1`), or the whole key."""
        return self.key.partition("@")[0]

    @property
    def level(self) -> float | None:
        """The number after `@` (eps in 1/255, or a severity), or None."""
        _, sep, level = self.key.partition("@")
        return float(level) if sep else None

    def column(self) -> str:
        """The NB201 robustness dataset column this objective names (`clean_acc` -> `clean`)."""
        if self.key in ("clean", "clean_acc"):
            return "clean"
        if self.level is None:
            raise ConfigError(
                f"objective {self.key} is measured on trained networks; the NB201 robustness "
                "dataset names its columns clean, <attack>@<eps in 1/255> (fgsm@1, pgd@8) or "
                "<corruption>@<severity> (fog@3)"
            )
        return self.key

    def network(
        self,
        *,
        eps: Eps | None = None,
        steps: int | None = None,
        metrics: Mapping[str, str] = NETWORK_METRICS,
    ) -> NetworkObjective:
        """The objective as a network search measures it. `eps` and `steps` are `--eps` and
        `--attack-steps` (None: not given); `metrics` the other keys the mode reports."""
        name, level = self.name, self.level
        if level is not None:
            if name not in ATTACK_NAMES:
                raise ConfigError(
                    f"a network search measures clean, fgsm@<eps> and pgd@<eps>; {self.key} is "
                    "a column of the NB201 robustness dataset (search it with --benchmark)"
                )
            if eps is not None:
                raise ConfigError(f"objective {self.key} names its eps; drop --eps")
            attack = _attack(name, Eps.of_255(level), steps)
            return NetworkObjective(attack.metric, "maximize", attack)
        default = _attack("pgd", eps, steps)
        if self.key in ("clean", "clean_acc"):
            return NetworkObjective("clean_acc", "maximize", default)
        if self.key == "fgsm_acc" or _PGD_KEY.match(self.key):
            pgd = _PGD_KEY.match(self.key)
            if pgd and steps is not None and int(pgd.group(1)) != steps:
                raise ConfigError(
                    f"objective {self.key} is PGD-{pgd.group(1)}; --attack-steps {steps} "
                    f"measures pgd{steps}_acc"
                )
            name = "fgsm" if self.key == "fgsm_acc" else "pgd"
            attack = _attack(name, eps, int(pgd.group(1)) if pgd else steps)
            return NetworkObjective(attack.metric, "maximize", attack)
        if self.key in metrics:
            return NetworkObjective(self.key, metrics[self.key], default)
        known = ["clean", "fgsm@<eps>", "pgd@<eps>", default.metric, "fgsm_acc", *metrics]
        raise UnknownName(
            f"unknown objective {self.key!r}; known: {', '.join(dict.fromkeys(known))} "
            "(a network search; eps in 1/255)"
        )

    def __str__(self) -> str:
        return self.key


def default_objective(*, eps: Eps | None = None, steps: int | None = None) -> NetworkObjective:
    """A network search's objective when none is named: the accuracy under PGD (`--eps`,
    default 8/255; `--attack-steps`, default 20: `pgd20_acc`)."""
    attack = _attack("pgd", eps, steps)
    return NetworkObjective(attack.metric, "maximize", attack)


def _attack(name: str, eps: Eps | None, steps: int | None) -> AttackSpec:
    if name == "fgsm" and steps is not None:
        raise ConfigError("FGSM takes one step; --attack-steps sets PGD's steps")
    default_steps = DEFAULT_ATTACK_STEPS if name == "pgd" else 1
    return AttackSpec(
        name, DEFAULT_EPS if eps is None else eps, default_steps if steps is None else steps
    )


# -- sizes -----------------------------------------------------------------------------------------

_COUNT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Size:
    """A network size: a size name of the space's `[sizes]`, counts on top of it, or both.

    `fallback` marks a preset's default size: a space without a size of that name uses its
    default size instead (a size the user names must exist)."""

    name: str | None = None
    counts: tuple[tuple[str, int], ...] = ()
    fallback: bool = False

    @classmethod
    def parse(cls, text: str) -> Size:
        """`tiny`, `C=16,layers=8`, `C=16,N=5` or `tiny,C=12`."""
        name: str | None = None
        counts: dict[str, int] = {}
        for part in (p.strip() for p in str(text).split(",")):
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep and key and name is None and not counts and _COUNT.match(key):
                name = key
            elif sep and _COUNT.match(key) and value.isdigit() and int(value) >= 1:
                counts[key] = int(value)
            else:
                raise ConfigError(
                    f"cannot read size {text!r}: write a size name (tiny), positive counts "
                    "like C=16,layers=8 (or C=16,N=5), or both (tiny,C=12)"
                )
        return cls(name, tuple(counts.items()))

    @classmethod
    def default_of(cls, name: str) -> Size:
        """A preset's default size `name` (used only where the space has it)."""
        return cls(name, fallback=True)

    def with_counts(self, **counts: int | None) -> Size:
        """This size with more counts (None: not given), e.g. from `--C 4 --N 1`."""
        given = {k: int(v) for k, v in counts.items() if v is not None}
        for key, value in given.items():
            if value < 1:
                raise ConfigError(f"--{key} must be at least 1, got {value}")
        return Size(self.name, tuple({**dict(self.counts), **given}.items()), self.fallback)

    def __bool__(self) -> bool:
        return self.name is not None or bool(self.counts)

    def __str__(self) -> str:
        parts = ([self.name] if self.name else []) + [f"{k}={v}" for k, v in self.counts]
        return ",".join(parts) or "default"


def size_from(size: str | Size | None = None, **counts: int | None) -> Size | None:
    """A Size from flag values: `--size` text (or a Size) and count overrides; None if none."""
    base = Size.parse(size) if isinstance(size, str) else (size or Size())
    out = base.with_counts(**counts)
    return out if out else None


# -- budgets ---------------------------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_COUNT_TEXT = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([kmg]?)\s*$", re.IGNORECASE)


def parse_count(text: str | int | float) -> int:
    """A positive count from `5M`, `500K`, `1.5G`, `5e6` or `5000000`."""
    match = _COUNT_TEXT.match(str(text))
    if match is None:
        raise BudgetError(
            f"cannot read budget {text!r}: use a count like 5M, 500K, 1.5G, 5e6 or 5000000"
        )
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise BudgetError(f"budget {text!r} must be a positive count like 5M or 500K")
    return int(round(value))


def format_count(n: float) -> str:
    """5_000_000 -> '5.00M', for tables and messages."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(int(n))


@dataclass(frozen=True)
class Budget:
    """Limits of the deployed network: parameters and multiply-adds (None: no limit)."""

    params: int | None = None
    flops: int | None = None

    def __post_init__(self) -> None:
        for what, value in (("budget", self.params), ("flops budget", self.flops)):
            if value is not None and value < 1:
                raise BudgetError(f"{what} must be a positive count, got {value}")

    @classmethod
    def parse(cls, params: str | None = None, flops: str | None = None) -> Budget:
        """`--budget 5M` and `--flops-budget 5G` (either may be None)."""
        return cls(
            None if params is None else parse_count(params),
            None if flops is None else parse_count(flops),
        )

    def __str__(self) -> str:
        parts = [f"{format_count(self.params)} params"] if self.params is not None else []
        parts += [f"{format_count(self.flops)} FLOPs"] if self.flops is not None else []
        return ", ".join(parts) or "no budget"


# -- data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """The images a run reads: `dataset` from `data_dir` (None: $ROBNAS_DATA), `train_size`
    training images (None: all but the held-out ones) and `val_size` held out of the training
    split, class-balanced (None: the command's default). Never the test split."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    train_size: int | None = None
    val_size: int | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--train-size", self.train_size), ("--val-size", self.val_size)):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")

    def with_defaults(self, train_size: int | None, val_size: int | None) -> DataSpec:
        """Sizes not given here taken from a preset."""
        return DataSpec(
            self.dataset,
            self.data_dir,
            self.train_size if self.train_size is not None else train_size,
            self.val_size if self.val_size is not None else val_size,
        )

    @property
    def limit(self) -> int | None:
        """Training-split images to read (None: all of them)."""
        if self.train_size is None:
            return None
        return self.train_size + (self.val_size or 0)


__all__ = [
    "ATTACK_NAMES",
    "DEFAULT_ATTACK_STEPS",
    "DEFAULT_EPS",
    "NETWORK_METRICS",
    "AttackSpec",
    "Budget",
    "DataSpec",
    "Eps",
    "NetworkObjective",
    "Objective",
    "Size",
    "attack_of_metric",
    "default_objective",
    "format_count",
    "format_eps",
    "parse_count",
    "parse_eps",
    "size_from",
]
