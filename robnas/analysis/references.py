"""What a budgeted search on the NB201 robustness dataset is judged against.

A user who runs `robnas search --budget B` gets one cell back. Whether that cell is good depends on
what else they could have had for the same budget, read from the dataset's ground truth:

- the optimum within the budget (the best any search could return);
- oracle random search with k cells: the true best of k distinct in-budget cells drawn uniformly
  (what scoring k random cells would give with a perfect ranker; its expectation is exact here,
  from order statistics, not a Monte Carlo estimate);
- the largest-cell rule: the in-budget cell with the most parameters, random among ties (a trivial
  rule that needs no training);
- a random in-budget cell.

Cells are the dataset's isomorphism classes (6,466 for NB201), each with the parameter count of
the cell the dataset evaluated for it, at the deployed size; draws are uniform over classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from robnas.analysis.nb201 import evaluated_indices
from robnas.data.tabular import TabularBenchmark, normalize_key
from robnas.errors import BudgetError
from robnas.models import sizing
from robnas.space.search_space import get_space


def expected_max_of_sample(values: np.ndarray, k: int) -> float:
    """E[max] of k distinct items drawn uniformly without replacement from `values`.

    With the values sorted ascending, the i-th smallest (1-based) is the maximum with probability
    C(i-1, k-1) / C(n, k)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}], got {k}")
    i = np.arange(k, n + 1)  # positions that can hold the maximum
    log_w = (
        gammaln(i)
        - gammaln(k)
        - gammaln(i - k + 1)
        - (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    )
    return float(np.sum(np.exp(log_w) * v[k - 1 :]))


@dataclass(frozen=True)
class BudgetReferences:
    """The in-budget classes of the dataset (one row each: arch, params, metric columns)."""

    budget: int | None
    table: pd.DataFrame
    keys: tuple[str, ...]

    @property
    def classes(self) -> int:
        return len(self.table)

    def optimum(self, key: str) -> float:
        return float(self.table[normalize_key(key)].max())

    def oracle_random(self, key: str, k: int) -> float:
        """Expected true best of `k` distinct random in-budget classes (k capped at all of them)."""
        return expected_max_of_sample(
            self.table[normalize_key(key)].to_numpy(), min(k, self.classes)
        )

    def largest_rule(self) -> dict[str, float]:
        """Expected metrics of the largest in-budget cell, random among ties."""
        top = self.table[self.table["params"] == self.table["params"].max()]
        return {k: float(top[k].mean()) for k in self.keys}

    def largest_ties(self) -> int:
        return int((self.table["params"] == self.table["params"].max()).sum())

    def random_cell(self) -> dict[str, float]:
        return {k: float(self.table[k].mean()) for k in self.keys}

    def percentile(self, key: str, value: float) -> float:
        """The share of in-budget classes whose `key` is at most `value` (1.0: the optimum)."""
        return float((self.table[normalize_key(key)] <= value).mean())

    def rows(self, k: int) -> list[dict[str, Any]]:
        """The references as table rows (name, then one value per key), oracle search at `k`."""
        return [
            {"reference": "optimum within the budget", **{m: self.optimum(m) for m in self.keys}},
            {
                "reference": f"oracle random search, {k} cells",
                **{m: self.oracle_random(m, k) for m in self.keys},
            },
            {
                "reference": "the largest cell under the budget (random among ties)",
                **self.largest_rule(),
            },
            {"reference": "a random in-budget cell", **self.random_cell()},
        ]


def budget_references(
    bench: TabularBenchmark,
    budget: int | None,
    *,
    final_macro: dict[str, Any] | None = None,
    keys: tuple[str, ...] = ("clean", "fgsm@1", "pgd@1"),
) -> BudgetReferences:
    """The in-budget classes of an NB201 benchmark at the deployed size (`final_macro`, default
    the space's paper size); BudgetError if none fits."""
    space = get_space("nb201")
    macro = final_macro if final_macro is not None else space.resolve_macro("paper")
    keys = tuple(normalize_key(k) for k in keys)
    cols = [bench.column(k) for k in keys]
    records = []
    for row, index in enumerate(evaluated_indices(bench)):
        g = bench.genotypes[index]
        params = sizing.num_params(space, g, macro, bench.dataset)
        if budget is not None and params > budget:
            continue
        values = bench.table[row, cols]
        if np.isnan(values).any():
            continue
        records.append({"arch": g.to_str(), "params": params, **dict(zip(keys, values.tolist()))})
    if not records:
        raise BudgetError(f"no NB201 cell of the dataset fits a budget of {budget} parameters")
    return BudgetReferences(budget, pd.DataFrame(records), keys)


__all__ = ["BudgetReferences", "budget_references", "expected_max_of_sample"]
