"""Optuna samplers through ask/tell: TPE (multivariate) and NSGA-II (robustness vs parameters).

The space's flat `dimensions()` become CategoricalDistributions of an in-memory Optuna study. An
infeasible proposal (over the budget) is told as pruned (TPE) or failed (NSGA-II) and the sampler
is asked again, so no infeasible genotype ever leaves the strategy. A proposal already evaluated
is told its known values at once and the sampler asked again (no query is spent on it).

Optuna samplers keep their state in private objects, so `state_dict()` is the ask/tell log and
`load_state_dict()` replays it through a fresh sampler with the same seed, which reproduces the
state exactly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.result import Result
from robnas.strategies.base import Strategy


class OptunaStrategy(Strategy):
    def __init__(self, space: Any, **kw: Any) -> None:
        super().__init__(space, **kw)
        dims = space.dimensions(free=self.free, macro=self.macro)
        self.names = [d.name for d in dims]
        self.distributions: dict[str, BaseDistribution] = {
            d.name: CategoricalDistribution(list(d.choices)) for d in dims
        }
        self.log: list[dict[str, Any]] = []  # the ask/tell sequence, for state_dict
        self._replaying = False
        self._reset()

    def _reset(self) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(
                sampler=self._sampler(),
                directions=self._directions(),  # type: ignore[arg-type]
            )
        self.pending: dict[str, list[int]] = {}
        self.known: dict[str, list[float] | None] = {}

    def _sampler(self) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def reseed(self, seed: int) -> None:
        super().reseed(seed)
        self.log = []
        self._reset()

    def _directions(self) -> list[str]:
        return [self.direction]

    def _values(self, result: Result) -> list[float] | None:
        """Objective values for Optuna, or None for a result it should not learn from."""
        value = result.value(self.objective)
        if not result.ok or math.isnan(value):
            return None
        return [value]

    def _reject_state(self) -> TrialState:
        return TrialState.PRUNED

    def _tell_values(self, trial: Any, values: list[float] | None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if values is None:
                self.study.tell(trial, state=self._reject_state())
            else:
                self.study.tell(trial, values if len(values) > 1 else values[0])

    def ask(self) -> Genotype:
        if not self._replaying:
            self.log.append({"op": "ask"})
        for _ in range(self.max_tries):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask(self.distributions)
            g = self.space.decode([trial.params[n] for n in self.names])
            key = g.to_str()
            if not self.feasible(g):
                self._tell_values(trial, None)
                continue
            if key in self.known:  # evaluated before: answer from memory, no query
                self._tell_values(trial, self.known[key])
                continue
            if key in self.seen:  # asked and still out (another ask before its tell)
                self._tell_values(trial, None)
                continue
            self.pending.setdefault(key, []).append(trial.number)
            return self.propose(g)
        fallback = self.sample_new()  # the sampler is stuck on known genotypes: enqueue a new one
        self.study.enqueue_trial(dict(zip(self.names, self.space.encode(fallback))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask(self.distributions)
        self.pending.setdefault(fallback.to_str(), []).append(trial.number)
        return fallback

    def tell(self, genotype: Genotype, result: Result) -> None:
        if not self._replaying:
            self.log.append(
                {"op": "tell", "genotype": genotype.to_str(), "result": result.to_dict()}
            )
        super().tell(genotype, result)

    def _on_tell(self, genotype: Genotype, score: float, result: Result) -> None:
        key = genotype.to_str()
        values = self._values(result)
        self.known[key] = values
        numbers = self.pending.get(key)
        if numbers:
            self._tell_values(numbers.pop(0), values)
            if not numbers:
                del self.pending[key]
        elif values is not None:  # never asked here (e.g. found by another worker): add it
            params = dict(zip(self.names, self.space.encode(genotype)))
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=self.distributions,
                    values=values,
                )
            )

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "log": list(self.log)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or int(state.get("seed", -1)) != self.seed:
            raise ConfigError(
                f"state of {state.get('name')!r} seed {state.get('seed')} given to {self.name!r} seed {self.seed}"
            )

        self.rng = np.random.default_rng(self.seed)
        self.scores, self.seen, self.num_told = {}, set(), 0
        self.log = []
        self._reset()
        self._replaying = True
        try:
            for event in state["log"]:
                if event["op"] == "ask":
                    self.ask()
                else:
                    self.tell(self.parse(event["genotype"]), Result.from_dict(event["result"]))
        finally:
            self._replaying = False
        self.log = list(state["log"])


class TPE(OptunaStrategy):
    """Optuna's multivariate TPE over the categorical edge choices."""

    name = "tpe"

    def __init__(self, space: Any, *, n_startup_trials: int = 10, **kw: Any) -> None:
        self.n_startup_trials = n_startup_trials
        super().__init__(space, **kw)

    def _sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(
            multivariate=True, seed=self.seed, n_startup_trials=self.n_startup_trials
        )


class NSGA2(OptunaStrategy):
    """Optuna's NSGA-II on two objectives: the robust metric (given direction) and parameters (min)."""

    name = "nsga2"
    multi_objective = True

    def __init__(self, space: Any, *, population_size: int = 20, **kw: Any) -> None:
        self.population_size = population_size
        super().__init__(space, **kw)

    def _sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(population_size=self.population_size, seed=self.seed)

    def _directions(self) -> list[str]:
        return [self.direction, "minimize"]

    def _values(self, result: Result) -> list[float] | None:
        value = result.value(self.objective)
        if not result.ok or math.isnan(value):
            return None
        return [value, float(result.num_params)]

    def _reject_state(self) -> TrialState:
        return TrialState.FAIL
