"""`robust_forest`: a GRAF-style ranker of robustness, a tree ensemble on free cell features.

Kadlecová et al. (GRAF, ICML 2024) show that simple graph features of a cell with a forest,
trained on some cells' measured accuracies, rank other cells well, robustness included. This is
that protocol, declared before it was tested: an extremely randomised trees regressor on the
graph statistics of `CellFeatures` (op counts, per-op-subset edge and path counts and path
lengths, fewest and most of an op on a path, DAG depth and width, node degrees) and the
deployed parameter count. Its inputs need no ground truth, no network and no data; its target
does: it is fitted to the measured `fgsm@1` and `pgd@1` of training cells, each standardised
over those cells, summed (one ranker for both attacks).

So it is a predictor, not a proxy: it ranks cells of the space it was fitted on (NB201 here,
from the robustness dataset) and says nothing about a space without measured cells, such as
darts at CPU scale. It is tested on cells disjoint from its training cells
(experiments/ranking_fourth_draw.py). scikit-learn is imported on the first fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robnas.genotype import Genotype
from robnas.space.cell import CellSpace
from robnas.strategies.features import CellFeatures

#: the declared settings: fixed before the fourth NB201 draw was scored, never tuned on it
TREES = 300
MIN_SAMPLES_LEAF = 5
MAX_FEATURES = 0.3
SEED = 0
TARGETS = ("fgsm@1", "pgd@1")

ROBUST_FOREST_DEFINITION = (
    f"`robust_forest`: extremely randomised trees ({TREES} trees, at least {MIN_SAMPLES_LEAF} "
    f"cells per leaf, {MAX_FEATURES:g} of the features per split, seed {SEED}) on the cell's "
    "free graph features (robnas.strategies.features.CellFeatures: op counts, per-op-subset "
    "edges, paths and path lengths, the fewest and most of each op on a path, depth, width, "
    "degrees) and the deployed parameter count, fitted to z(fgsm@1) + z(pgd@1) of the training "
    "cells (each truth standardised over them). A predictor fitted on measured cells: it ranks "
    "cells of the space it was fitted on."
)


def robust_target(truths: dict[str, Sequence[float]]) -> np.ndarray:
    """The fitted target: each of `TARGETS` standardised over the training cells, summed."""
    total = np.zeros(len(truths[TARGETS[0]]))
    for key in TARGETS:
        values = np.asarray(truths[key], dtype=float)
        spread = values.std()
        if not np.isfinite(values).all() or spread == 0:
            raise ValueError(f"robust_forest: {key} must be finite and vary over the cells")
        total += (values - values.mean()) / spread
    return total


class RobustForest:
    """`fit(genotypes, truths)`, then `predict(genotypes)`: higher predicts more robust."""

    def __init__(self, space: CellSpace, macro: dict[str, Any], dataset: str = "cifar10") -> None:
        self.features = CellFeatures(space, macro=macro, dataset=dataset, flops=False)
        self.model: Any = None

    def matrix(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        return np.stack([self.features(g) for g in genotypes])

    def fit(
        self, genotypes: Sequence[Genotype], truths: dict[str, Sequence[float]]
    ) -> RobustForest:
        from sklearn.ensemble import ExtraTreesRegressor  # heavy: loaded when fitted

        self.model = ExtraTreesRegressor(
            n_estimators=TREES,
            min_samples_leaf=MIN_SAMPLES_LEAF,
            max_features=MAX_FEATURES,
            random_state=SEED,
            n_jobs=1,  # the same trees whatever the machine's cores
        ).fit(self.matrix(genotypes), robust_target(truths))
        return self

    def predict(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("robust_forest: fit it before predicting")
        return np.asarray(self.model.predict(self.matrix(genotypes)))
