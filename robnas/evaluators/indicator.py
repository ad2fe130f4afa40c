"""`IndicatorEvaluator`: training-free indicators of a freshly initialised (seeded) or
supernet-inherited network, for multi-fidelity ranking and prescreening."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.device import resolve_device
from robnas.evaluators.base import (
    DEFAULT_INDICATORS,
    NetworkEvaluator,
    Scorer,
    Scoring,
    seeded_build,
)
from robnas.genotype import Genotype
from robnas.models.supernet import recalibrate
from robnas.space.search_space import SearchSpace

if TYPE_CHECKING:
    from robnas.models.supernet import Supernet


class IndicatorEvaluator(NetworkEvaluator):
    """Training-free scores: indicators of a seeded fresh network, or of the supernet's path.

    data: the images the indicators (and BN recalibration) use. With `supernet`, the network is
    the path's inherited weights at the supernet's size; else a fresh seeded network at `macro`.
    recal_batches > 0 re-estimates BatchNorm statistics on `data` first. scoring: what is
    measured (default: the FSP and Jacobian indicators, no attack, batches of 64; its batch
    size also recalibrates BN).
    """

    def __init__(
        self,
        space: SearchSpace,
        macro: dict[str, Any] | None,
        data: ImageData,
        scoring: Scoring | None = None,
        *,
        supernet: Supernet | None = None,
        dataset: str = "cifar10",
        final_macro: dict[str, Any] | None = None,
        recal_batches: int = 2,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if len(data) == 0:
            raise ValueError("data must hold images")
        if supernet is None and macro is None:
            raise ValueError("give a macro size for fresh networks, or a supernet to inherit from")
        self.space = space
        self.supernet = supernet
        self.macro = dict(supernet.macro if supernet is not None else macro)  # type: ignore[arg-type]
        self.dataset = supernet.dataset if supernet is not None else dataset
        self.data = data
        self.recal_batches = int(recal_batches)
        scoring = scoring or Scoring(attack=None, indicators=DEFAULT_INDICATORS, batch_size=64)
        self.batch_size = int(scoring.batch_size)
        self.device = resolve_device(device)
        self.seed = int(seed)
        final = self.macro if final_macro is None else final_macro
        self.scorer = Scorer(space, final, self.dataset, scoring)
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        if self.supernet is not None:
            model = self.supernet.extract(genotype)
            device = next(model.parameters()).device
        else:
            device = self.device
            model = seeded_build(self.space, genotype, self.macro, self.dataset, seed).to(device)
        generator = torch.Generator().manual_seed(seed)
        recalibrate(model, self.data, self.recal_batches, self.batch_size, generator, device)
        return model, self.data, device
