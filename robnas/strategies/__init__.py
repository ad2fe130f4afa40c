"""Search strategies (ask/tell, seeded, state saved): the `STRATEGIES` registry.

    random                 uniform feasible samples (RobNet's protocol)
    regularized_evolution  Real et al.: tournament selection, one-edge mutation, oldest removed
    local_search           White et al.: one-edge neighbourhood hill climbing, random restarts
    tpe                    Optuna multivariate TPE over the categorical edge choices
    nsga2                  Optuna NSGA-II: robust metric vs parameter count
    surrogate              ours: GP (Hamming + path kernel) EI, alternating with GP-ranked
                           local steps; never queries an isomorph of an evaluated cell
    predictor              ours: extra-trees ensemble on free cell features (GRAF-style graph
                           statistics, #params, FLOPs), Thompson sampling over a pool of
                           neighbours, two-edge neighbours and random samples

`make_strategy(name, space, seed=..., objective=..., ...)` builds one; `prescreened(...)` wraps
any strategy with a cheap-indicator pre-screen (multi-fidelity).
"""

from __future__ import annotations

from typing import Any

from robnas.registry import Registry
from robnas.space.search_space import SearchSpace
from robnas.strategies.base import Feasible, Strategy, make_budget_predicate
from robnas.strategies.evolution import RegularizedEvolution
from robnas.strategies.local_search import LocalSearch
from robnas.strategies.optuna_based import NSGA2, TPE, OptunaStrategy
from robnas.strategies.predictor import Predictor
from robnas.strategies.prescreen import Prescreened
from robnas.strategies.random_search import RandomSearch
from robnas.strategies.surrogate import Surrogate

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (RandomSearch, RegularizedEvolution, LocalSearch, TPE, NSGA2, Surrogate, Predictor):
    STRATEGIES.add(_cls.name, _cls)


def make_strategy(name: str, space: SearchSpace, **kwargs: Any) -> Strategy:
    """A registered strategy by name; keyword-only options (seed, objective, feasible, ...)."""
    return STRATEGIES.get(name)(space, **kwargs)


__all__ = [
    "NSGA2",
    "STRATEGIES",
    "TPE",
    "Feasible",
    "LocalSearch",
    "OptunaStrategy",
    "Predictor",
    "Prescreened",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "Surrogate",
    "make_budget_predicate",
    "make_strategy",
]
