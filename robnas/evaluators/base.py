"""The evaluator template: genotype -> Result(metrics, num_params, seconds, status).

`NetworkEvaluator.evaluate` is the one sequence every network evaluator follows: validate the
genotype, answer an isomorph of an evaluated genotype from memory (a query is the first
evaluation of an isomorphism class, `SearchSpace.canonical`), seed from (seed, genotype), get the
network from the subclass (`network`: inherit, build or train it), measure it with the `Scorer`,
add the structural metrics at the final macro size, time it and mark non-finite scores "failed".

Randomness: each genotype gets its own seed from (seed, genotype key), so a result does not
depend on which genotypes were evaluated before it. No global seeding.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from robnas import models
from robnas.attacks import Attack, make_attack
from robnas.data.datasets import ImageData
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS, STRUCTURAL, IndicatorConfig, as_config
from robnas.indicators.robust import robust_accuracy
from robnas.indicators.structure import genotype_structure
from robnas.result import Result
from robnas.space.search_space import SearchSpace, cell_space
from robnas.specs import AttackSpec

log = logging.getLogger(__name__)

DEFAULT_INDICATORS = ("fsp_dist", "jac_norm")


class Evaluator(Protocol):
    """What a study and a strategy need: a Result for a genotype."""

    def evaluate(self, genotype: Genotype) -> Result: ...


def genotype_seed(seed: int, genotype: Genotype) -> int:
    """A 31-bit seed for one genotype, stable across processes and evaluation orders."""
    return zlib.crc32(f"{int(seed)}:{genotype.key}".encode()) & 0x7FFFFFFF


M = TypeVar("M", bound=nn.Module)


def seeded(seed: int, make: Callable[[], M]) -> M:
    """`make()` (a network) initialised from `seed` alone: torch's global generator, which
    layers draw their initial weights from, is seeded inside and restored afterwards (its own
    seed differs from process to process)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def seeded_build(
    space: SearchSpace, genotype: Genotype, macro: dict[str, Any], dataset: str, seed: int
) -> nn.Module:
    """Build with a reproducible initialisation; the global RNG state is restored afterwards."""
    return seeded(seed, lambda: models.build(space, genotype, macro, dataset))


class QueryCounter:
    """Counts queries by isomorphism class: the first evaluation of a class is a query, a later
    isomorph is a cache hit that costs nothing, whichever strategy proposed it."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._results: dict[str, Result] = {}
        self.queried: list[str] = []  #: genotype strings that were queries, in order
        self.queries = 0
        self.cache_hits = 0

    def is_cached(self, genotype: Genotype) -> bool:
        return self.space.canonical(genotype) in self._results

    def cached(self, genotype: Genotype) -> Result | None:
        """The stored Result of an isomorph of `genotype` (counted as a cache hit), or None."""
        hit = self._results.get(self.space.canonical(genotype))
        if hit is not None:
            self.cache_hits += 1
        return hit

    def record(self, genotype: Genotype, result: Result) -> None:
        form = self.space.canonical(genotype)
        if form not in self._results:
            self._results[form] = result
            self.queried.append(genotype.to_str())
            self.queries += 1

    def reset(self) -> None:
        self._results.clear()
        self.queried.clear()
        self.queries = 0
        self.cache_hits = 0


def build_attack(spec: AttackSpec, seed: int) -> Attack:
    """The registered attack an AttackSpec names, seeded."""
    return make_attack(spec.name, eps=float(spec.eps), seed=seed, **spec.options)


@dataclass(frozen=True)
class Scoring:
    """What a network evaluator measures on each network: clean accuracy and the accuracy
    under `attack` (None: neither), the weight-dependent `indicators` on the first
    `indicator_samples` scoring images, in batches of `batch_size`. One value every network
    evaluator takes, so none forwards the scorer's arguments one by one."""

    attack: AttackSpec | None = AttackSpec()
    indicators: tuple[str, ...] = ()
    indicator_cfg: IndicatorConfig | Mapping[str, Any] | None = None
    indicator_samples: int = 64
    batch_size: int = 128


class Scorer:
    """What every network evaluator measures on a (trained or inherited) network.

    Clean and robust accuracy (the Scoring's attack: PGD-20 at 8/255 -> key `pgd20_acc`, FGSM
    -> `fgsm_acc`; `AttackSpec.metric`) on all of the scoring data, weight-dependent indicators
    on its first `indicator_samples` images, and the structural metrics at `final_macro`.
    """

    def __init__(
        self, space: SearchSpace, final_macro: dict[str, Any], dataset: str, scoring: Scoring
    ) -> None:
        unknown = [name for name in scoring.indicators if name not in INDICATORS]
        if unknown:
            INDICATORS.get(unknown[0])  # raises UnknownName listing the known ones
        if scoring.indicator_samples < 1 or scoring.batch_size < 1:
            raise ValueError("indicator_samples and batch_size must be >= 1")
        self.space = space
        self.final_macro = dict(final_macro)
        self.dataset = dataset
        self.attack = scoring.attack
        # structural ones are measured at the final size from the genotype, never on the model
        self.indicators = tuple(
            n.lower() for n in scoring.indicators if n.lower() not in STRUCTURAL
        )
        self.indicator_cfg = as_config(scoring.indicator_cfg)
        self.indicator_samples = int(scoring.indicator_samples)
        self.batch_size = int(scoring.batch_size)

    @property
    def robust_key(self) -> str | None:
        """The metric key of the robust accuracy (`pgd20_acc`), None without an attack."""
        return None if self.attack is None else self.attack.metric

    def structure(self, genotype: Genotype) -> tuple[dict[str, float], int]:
        info = genotype_structure(cell_space(self.space), genotype, self.final_macro, self.dataset)
        num_params = int(info.pop("num_params"))
        return info, num_params

    def model_metrics(
        self, model: nn.Module, data: ImageData, seed: int, device: torch.device
    ) -> dict[str, float]:
        images, labels = data.floats().to(device), data.labels.to(device)
        metrics: dict[str, float] = {}
        if self.attack is not None:
            attack = build_attack(self.attack, seed)
            generator = torch.Generator(device=device).manual_seed(seed)
            clean, robust = robust_accuracy(
                model, images, labels, attack, batch_size=self.batch_size, generator=generator
            )
            metrics["clean_acc"] = clean
            metrics[self.attack.metric] = robust
        n = min(self.indicator_samples, len(data))
        cfg = dataclasses.replace(self.indicator_cfg, seed=seed)
        for name in self.indicators:
            metrics.update(INDICATORS.get(name)(model, images[:n], labels[:n], cfg=cfg))
        return metrics


class NetworkEvaluator(ABC):
    """The template (module docstring). Subclasses set `space`, `macro` (the size genotypes are
    validated and evaluated at), `scorer` and `seed`, and implement `network`."""

    space: SearchSpace
    macro: dict[str, Any]
    scorer: Scorer
    seed: int

    def __init__(self) -> None:
        self.counter = QueryCounter(self.space)

    @property
    def queries(self) -> int:
        return self.counter.queries

    @abstractmethod
    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        """The network to score for `genotype` (inherited, built or trained), the data to score
        it on, and its device."""

    def evaluate(self, genotype: Genotype) -> Result:
        start = time.perf_counter()
        g = self.space.validate(genotype, self.macro)
        structure, num_params = self.scorer.structure(g)
        hit = self.counter.cached(g)
        if hit is not None:  # an isomorph: the same network function, scored already
            seconds = time.perf_counter() - start
            return Result({**hit.metrics, **structure}, num_params, seconds, hit.status)
        seed = genotype_seed(self.seed, g)
        model, data, device = self.network(g, seed)
        metrics = {**self.scorer.model_metrics(model, data, seed, device), **structure}
        finite = all(math.isfinite(v) for v in metrics.values())
        if not finite:
            log.warning("non-finite metrics for %s: %s", g.to_str(), metrics)
        status = "ok" if finite else "failed"
        result = Result(metrics, num_params, time.perf_counter() - start, status)
        self.counter.record(g, result)
        return result
