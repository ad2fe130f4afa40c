"""`RankerEvaluator`: the signals the declared rankers read, with no training, and
`ObjectiveEvaluator`: any protocol's evaluator plus the declared objective of a target.

The ranker protocol (robnas.objectives.protocols) measures, per cell: NASWOT at initialisation at
the deployed size (the declared `score`'s setting: 128 class-balanced training images, the
network initialised from seed 0, so every cell is charged the same and a cell's value does not
depend on what was evaluated before it) and the cell-graph path counts (free: read off the
genotype). No image is trained on, so nothing is held out; no label is read.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.errors import ConfigError
from robnas.evaluators.base import Evaluator, NetworkEvaluator, Scorer, Scoring, seeded_build
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.objectives.protocols import OBJECTIVE_KEY, check_protocol, objective
from robnas.objectives.scores import path_features
from robnas.result import Result
from robnas.space.search_space import SearchSpace

#: images NASWOT is computed on (the declared `score`'s setting)
NASWOT_IMAGES = 128


class RankerScorer(Scorer):
    """NASWOT of the (fresh, deployed-size) network and the cell's path counts."""

    def __init__(self, space: SearchSpace, final_macro: dict[str, Any], dataset: str) -> None:
        super().__init__(
            space, final_macro, dataset, Scoring(attack=None, batch_size=NASWOT_IMAGES)
        )

    def structure(self, genotype: Genotype) -> tuple[dict[str, float], int]:
        info, num_params = super().structure(genotype)
        return {**info, **path_features(genotype.cells[0])}, num_params

    def model_metrics(
        self, model: nn.Module, data: ImageData, seed: int, device: torch.device
    ) -> dict[str, float]:
        images, labels = data.floats().to(device), data.labels.to(device)
        naswot = INDICATORS.get("naswot")(model, images, labels, cfg={"seed": 0})["naswot"]
        return {"naswot": float(naswot)}


class RankerEvaluator(NetworkEvaluator):
    """The ranker protocol's measurements of a genotype (module docstring). `images`: the
    NASWOT batch (class-balanced; `load_dataset(..., limit=128, seed=0)` is the declared one);
    `init_seed`: the initialisation every cell gets (0 as declared)."""

    def __init__(
        self,
        space: SearchSpace,
        final_macro: dict[str, Any],
        images: ImageData,
        *,
        dataset: str = "cifar10",
        init_seed: int = 0,
    ) -> None:
        if space.name != "nb201":
            raise ConfigError(
                f"the ranker protocol's path counts are defined on NB201 cells, not {space.name}; "
                "use --protocol supernet"
            )
        if len(images) < 2:
            raise ValueError("NASWOT needs a batch of at least two images")
        self.space = space
        self.macro = dict(final_macro)  # scored at the deployed size: the declared setting
        self.dataset = dataset
        self.images = images
        self.seed = int(init_seed)
        self.scorer = RankerScorer(space, self.macro, dataset)
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        # the declared setting: every cell from the same initialisation seed, not a per-cell one
        model = seeded_build(self.space, genotype, self.macro, self.dataset, self.seed)
        return model.eval(), self.images, torch.device("cpu")


class ObjectiveEvaluator:
    """Wraps a protocol's evaluator: its metrics plus the declared objective of `target` under
    the key `objective` (robnas.objectives.protocols), which the strategy maximises, and the CPU
    seconds the cell took (`cpu_s`). A result whose objective is not finite is marked failed
    (it never wins)."""

    def __init__(self, inner: Evaluator, protocol: str, target: str) -> None:
        self.inner = inner
        self.protocol, self.target = check_protocol(protocol, target)

    @property
    def queries(self) -> int:
        return int(getattr(self.inner, "queries", 0))

    def evaluate(self, genotype: Genotype) -> Result:
        cpu = time.process_time()
        result = self.inner.evaluate(genotype)
        start = time.perf_counter()
        value = (
            objective(self.protocol, self.target, result.metrics, result.num_params)
            if result.ok
            else math.nan
        )
        status = result.status if math.isfinite(value) else "failed"
        # CPU seconds of this process for the cell (every thread): cells per CPU-minute
        metrics = {**result.metrics, OBJECTIVE_KEY: value, "cpu_s": time.process_time() - cpu}
        seconds = result.seconds + (time.perf_counter() - start)
        return Result(metrics, result.num_params, seconds, status)


__all__ = ["NASWOT_IMAGES", "ObjectiveEvaluator", "RankerEvaluator", "RankerScorer"]
