"""Cell features every genotype has for free: GRAF-style graph statistics, #params and FLOPs.

Kadlecová et al. (GRAF, ICML 2024) describe a cell by simple, interpretable numbers read off its
graph and show that a tree model on them predicts accuracy and robustness well. `CellFeatures`
computes our own version of them from the genotype and the space alone (numpy; no network is
built, no data read), so any strategy or ranker can use them at no query cost:

- op counts: per op, the edges carrying it; and the empty edges;
- for every non-empty subset S of the space's ops (NB201: 15 subsets, darts: 3), on the graph of
  the edges carrying an op of S: the number of such edges, the number of input-to-output paths
  (an edge with several ops of S counts once per op: each is a distinct computation), the
  shortest and the longest such path (0 when there is none), the S-edges leaving the inputs
  and the S-paths' end points at the output (for a concat output: the intermediate nodes that
  an S-path reaches);
- per op, the most and the fewest edges of that op on one input-to-output path of active edges
  (a fewest of 1: every path passes the op, e.g. every path starts with a pooling);
- the DAG of active edges: depth (longest input-to-output path), width (the most live nodes at
  one depth), mean in- and out-degree of the live intermediate nodes (live: on some
  input-to-output path);
- `num_params` and `flops` of the network at a given macro size (`space.num_params`; the FLOPs
  table is measured once per space and size on the meta device), when a macro is given.

Cells with two inputs (darts) count paths from either input; a concat output (darts) makes
every intermediate node an output. A cell-free genotype (one cell per layer) gets the mean of
its cells' graph statistics. `onehot=True` appends the space's positional one-hot encoding
(`CellSpace.onehot`): graph statistics are isomorphism-invariant, some objectives are not.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from robnas.genotype import Cell, Genotype
from robnas.indicators.structure import genotype_flops
from robnas.models.sizing import num_params
from robnas.space.cell import CellSpace

#: per-subset statistics, in order
SUBSET_STATS = ("edges", "paths", "min_len", "max_len", "out_in", "in_out")


#: feature rows by instance settings, then by genotype string (a space by identity: the key keeps
#: it alive)
_SHARED: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
_SHARED_LIMIT = 1 << 18


def op_subsets(ops: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every non-empty subset of `ops`, smallest first, in the space's op order."""
    return [s for size in range(1, len(ops) + 1) for s in itertools.combinations(ops, size)]


class CellFeatures:
    """`features(genotype) -> np.ndarray` of `names`; cached per genotype string."""

    def __init__(
        self,
        space: CellSpace,
        *,
        macro: dict[str, Any] | None = None,
        dataset: str = "cifar10",
        onehot: bool = False,
        flops: bool = True,
    ) -> None:
        self.space = space
        self.macro = macro
        self.dataset = dataset
        self.onehot = onehot
        self.flops = flops and macro is not None
        self.subsets = op_subsets(space.ops)
        names = [f"count_{op}" for op in space.ops] + ["count_none"]
        for subset in self.subsets:
            label = "+".join(subset)
            names += [f"{stat}[{label}]" for stat in SUBSET_STATS]
        names += [f"max_on_path_{op}" for op in space.ops]
        names += [f"min_on_path_{op}" for op in space.ops]
        names += ["depth", "width", "mean_in_degree", "mean_out_degree"]
        if macro is not None:
            names.append("num_params")
            if self.flops:
                names.append("flops")
        self.graph_size = len(names)
        self._onehot_size = 0
        if onehot:
            self._onehot_size = space.num_edges * len(space.ops)
            names += [f"onehot_{e}_{op}" for e in range(space.num_edges) for op in space.ops]
        self.names: tuple[str, ...] = tuple(names)
        macro_key = None if macro is None else tuple(sorted(macro.items()))
        signature = (space, macro_key, dataset, onehot, self.flops)
        #: genotype string -> features, shared by every instance with the same settings
        self._cache = _SHARED.setdefault(signature, {})

    def __call__(self, genotype: Genotype) -> np.ndarray:
        key = genotype.to_str()
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _SHARED_LIMIT:
                self._cache.clear()
            found = self._cache[key] = self._compute(genotype)
            found.flags.writeable = False
        return found

    def matrix(self, genotypes: list[Genotype]) -> np.ndarray:
        """One row per genotype (float64)."""
        if not genotypes:
            return np.zeros((0, len(self.names)))
        return np.stack([self(g) for g in genotypes])

    def _compute(self, genotype: Genotype) -> np.ndarray:
        cells = np.stack([cell_stats(self.space, cell) for cell in genotype.cells]).mean(axis=0)
        parts = [cells]
        if self.macro is not None:
            size = [float(num_params(self.space, genotype, self.macro, self.dataset))]
            if self.flops:
                size.append(float(genotype_flops(self.space, genotype, self.macro, self.dataset)))
            parts.append(np.array(size))
        if self.onehot:
            # a cell-free genotype's layers are averaged like its graph statistics
            hot = self.space.onehot(genotype).reshape(len(genotype.cells), -1).mean(axis=0)
            parts.append(hot.astype(np.float64))
        return np.concatenate(parts)


@functools.lru_cache(maxsize=1 << 16)
def cell_stats(space: CellSpace, cell: Cell) -> np.ndarray:
    """The graph statistics of one cell (every feature but the size and one-hot columns);
    cached, shared by every `CellFeatures` of the space. Read-only."""
    inputs, n = space.inputs, space.inputs + space.nodes
    # mult[op][j, i]: 1 if the edge j -> i carries op (nodes numbered inputs first)
    mult = {op: np.zeros((n, n), dtype=np.int64) for op in space.ops}
    empty = 0
    for node, preds in enumerate(cell):
        for j, edge in enumerate(preds):
            if not edge:
                empty += 1
            for op in edge:
                mult[op][j, inputs + node] = 1
    outputs = list(range(inputs, n)) if space.output == "concat" else [n - 1]
    out: list[float] = [float(mult[op].sum()) for op in space.ops] + [float(empty)]
    for subset in op_subsets(space.ops):
        adj = sum(mult[op] for op in subset)
        assert isinstance(adj, np.ndarray)
        paths, shortest, longest = _paths(adj, inputs)
        ends = [i for i in outputs if paths[i] > 0]
        out += [
            float((adj > 0).sum()),
            float(sum(paths[i] for i in outputs)),
            float(min((shortest[i] for i in ends), default=0)),
            float(max((longest[i] for i in ends), default=0)),
            float((adj[:inputs] > 0).sum()),
            float(len(ends) if space.output == "concat" else (adj[:, n - 1] > 0).sum()),
        ]
    active = sum(mult.values())
    assert isinstance(active, np.ndarray)
    for op in space.ops:
        out.append(float(_on_path(active > 0, mult[op], inputs, outputs, max)))
    for op in space.ops:
        out.append(float(_on_path(active > 0, mult[op], inputs, outputs, min)))
    out += _dag_shape(active > 0, inputs, outputs)
    stats = np.array(out, dtype=np.float64)
    stats.flags.writeable = False
    return stats


def _paths(adj: np.ndarray, inputs: int) -> tuple[list[int], list[int], list[int]]:
    """Per node: the number of input-to-node paths (weighted by `adj`), shortest and longest."""
    n = adj.shape[0]
    count = [1] * inputs + [0] * (n - inputs)
    shortest = [0] * n
    longest = [0] * n
    for i in range(inputs, n):
        preds = [j for j in range(i) if adj[j, i] and count[j]]
        count[i] = int(sum(int(adj[j, i]) * count[j] for j in preds))
        if preds:
            shortest[i] = 1 + min(shortest[j] for j in preds)
            longest[i] = 1 + max(longest[j] for j in preds)
    return count, shortest, longest


def _on_path(
    active: np.ndarray,
    has_op: np.ndarray,
    inputs: int,
    outputs: list[int],
    pick: Callable[[list[int]], int],
) -> int:
    """The most (`pick=max`) or fewest (`min`) edges carrying the op on one input-to-output path
    of active edges (0 without such a path)."""
    n = active.shape[0]
    best: list[int | None] = [0] * inputs + [None] * (n - inputs)
    for i in range(inputs, n):
        options = [
            b + int(has_op[j, i]) for j in range(i) if active[j, i] and (b := best[j]) is not None
        ]
        best[i] = pick(options) if options else None
    ends = [b for i in outputs if (b := best[i]) is not None]
    return pick(ends) if ends else 0


def _dag_shape(active: np.ndarray, inputs: int, outputs: list[int]) -> list[float]:
    """Depth, width and mean in/out degree of the live intermediate nodes."""
    n = active.shape[0]
    reached = [True] * inputs + [False] * (n - inputs)
    depth = [0] * n
    for i in range(inputs, n):
        preds = [j for j in range(i) if active[j, i] and reached[j]]
        reached[i] = bool(preds)
        depth[i] = 1 + max((depth[j] for j in preds), default=0)
    feeds = [False] * n
    for i in outputs:
        feeds[i] = reached[i]
    for i in range(n - 1, -1, -1):
        if any(active[i, k] and feeds[k] for k in range(i + 1, n)):
            feeds[i] = True
    live = [i for i in range(inputs, n) if reached[i] and feeds[i]]
    if not live:
        return [0.0, 0.0, 0.0, 0.0]
    levels: dict[int, int] = {}
    for i in live:
        levels[depth[i]] = levels.get(depth[i], 0) + 1
    alive = [reached[j] and feeds[j] for j in range(n)]
    ins = [sum(1 for j in range(i) if active[j, i] and alive[j]) for i in live]
    outs = [sum(1 for k in range(i + 1, n) if active[i, k] and alive[k]) for i in live]
    return [
        float(max(depth[i] for i in outputs if reached[i])),
        float(max(levels.values())),
        float(np.mean(ins)),
        float(np.mean(outs)),
    ]


__all__ = ["SUBSET_STATS", "CellFeatures", "cell_stats", "op_subsets"]
