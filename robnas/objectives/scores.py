"""What `score` (the ranker a budgeted search would pick cells by) can be, and the two rankers
declared for a search: `score` (clean accuracy) and `robust_score` (robustness within a size).
Light to import (no torch), so the CLI can offer the choices without loading it.

The declared rankers are fixed formulas of values measured without ground truth, so a search can
use them as its objective: one scalar per cell that does not move as more cells are evaluated (a
rank among the evaluated cells would). docs/ranking.md states them with the evidence they were
chosen on and how they were then tested on cells drawn afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The default of `robnas rank`, by the rule declared in experiments/supernet_seeds_nb201.py before
# its supernets were scored: keep the supernet in the default only if, averaged over six 32-epoch
# NB201 supernets, params+(supernet,naswot) ranks `clean` better than params+naswot. With each
# signal ranked within its parameter group, as the combined rankers are documented to, the
# average gain is +0.0083 (experiments/results/supernet_seeds_nb201/), so the rule keeps the
# supernet. (Computed with ranks over all cells, a bug since fixed, it read -0.0001 and the
# default had been params+naswot.) The rankers declared below need no supernet; a search uses them.
SCORES = {
    "params+(supernet,naswot)": "the parameter count first; within equal counts, the mean of the "
    "ranks of the supernet's clean accuracy and NASWOT at initialisation",
    "params+supernet": "the parameter count first; within equal counts, the supernet's clean "
    "accuracy",
    "params+naswot": "the parameter count first; within equal counts, NASWOT at initialisation "
    "(no supernet: training-free)",
}
DEFAULT_SCORE = "params+(supernet,naswot)"
NASWOT_SCORES = ("params+(supernet,naswot)", "params+naswot")  # need NASWOT at initialisation

# ---------------------------------------------------------------------------------------------
# The declared rankers (docs/ranking.md). Chosen on the two earlier NB201 draws (1,000 isomorph
# classes: experiments/results/oneshot_rank_nb201/oneshot_rank_nb201{,_fresh500}.csv and their indicator tables),
# fixed here before a third draw was measured. Each divisor is the pooled within-size standard
# deviation of that signal over those 1,000 cells (a property of the signal, not of any ground
# truth), so the terms weigh the same inside a size.
# ---------------------------------------------------------------------------------------------

#: within-size SD of each signal on the development cells (NASWOT: at initialisation, C=16 N=5,
#: 128 class-balanced CIFAR-10 images, seed 0)
SCALES = {
    "naswot": 24.71,
    "paths_nopool": 0.812,
    "min_pool_per_path": 0.2818,
    "free_paths": 0.6191,
}

SCORE_DEFINITION = (
    "`score`: the deployed parameter count first; within equal counts "
    "naswot / 24.71 + paths_nopool / 0.812 (NASWOT at initialisation at the deployed size; "
    "paths_nopool: input-to-output paths of the cell without a pooling op). As one scalar: "
    "num_params + 1/2 + atan(within) / pi, which orders by parameters first."
)
ROBUST_SCORE_DEFINITION = (
    "`robust_score`: min_pool_per_path / 0.2818 - free_paths / 0.6191 (min_pool_per_path: the "
    "fewest pooling ops on any input-to-output path of the cell, so >= 1 means every path is "
    "smoothed by a pooling op; free_paths: input-to-output paths with no convolution). As a "
    "search objective ties are broken towards the larger cell: robust_score + "
    "0.1 * num_params / (num_params + 1e6), a term below the formula's smallest step."
)


def _is_pool(op: str) -> bool:
    return "pool" in op


def _is_conv(op: str) -> bool:
    return "conv" in op


def cell_paths(
    cell: Sequence[Sequence[frozenset[str]]], inputs: int, output: str
) -> list[list[str]]:
    """Every input-to-output path of a cell as the list of its ops. `cell[i][j]` is the set of
    ops on the edge from node j (inputs first) into intermediate node i; an edge with several
    ops starts one path per op (each is a distinct computation). `output` is "last" (the last
    node) or "concat" (every intermediate node is an output)."""
    ends: dict[int, list[list[str]]] = {j: [[]] for j in range(inputs)}
    for i, preds in enumerate(cell):
        node = inputs + i
        ends[node] = [
            [*path, op]
            for j, ops in enumerate(preds)
            for op in sorted(ops)
            if op != "none"
            for path in ends[j]
        ]
    last = inputs + len(cell) - 1
    outputs = [last] if output == "last" else list(range(inputs, inputs + len(cell)))
    return [path for node in outputs for path in ends[node]]


def path_features(
    cell: Sequence[Sequence[frozenset[str]]], inputs: int = 1, output: str = "last"
) -> dict[str, float]:
    """The cell-graph signals the declared rankers read (free: no network is built)."""
    paths = cell_paths(cell, inputs, output)
    pools = [sum(_is_pool(op) for op in path) for path in paths]
    return {
        "paths": float(len(paths)),
        "paths_nopool": float(sum(n == 0 for n in pools)),
        "min_pool_per_path": float(min(pools, default=0)),
        "free_paths": float(sum(not any(_is_conv(op) for op in path) for path in paths)),
    }


def score_within(naswot: float, paths_nopool: float) -> float:
    """`score`'s term inside a size (higher predicts higher clean accuracy)."""
    return naswot / SCALES["naswot"] + paths_nopool / SCALES["paths_nopool"]


def score(num_params: float, naswot: float, paths_nopool: float) -> float:
    """The declared `score` as one scalar: the parameter count, then `score_within` squashed
    into (0, 1), so cells of different sizes order by size and equal sizes by the formula."""
    return float(num_params) + 0.5 + math.atan(score_within(naswot, paths_nopool)) / math.pi


def robust_score(min_pool_per_path: float, free_paths: float) -> float:
    """The declared `robust_score` (higher predicts more robust within a size)."""
    return min_pool_per_path / SCALES["min_pool_per_path"] - free_paths / SCALES["free_paths"]


def robust_objective(min_pool_per_path: float, free_paths: float, num_params: float) -> float:
    """`robust_score` as a search's objective: equal scores go to the larger cell. The tie term
    stays below 0.1; two distinct robust scores of NB201 cells (at most four paths) differ by
    more (the smallest step is |1/0.2818 - 2/0.6191| = 0.318)."""
    size = float(num_params)
    return robust_score(min_pool_per_path, free_paths) + 0.1 * size / (size + 1e6)
