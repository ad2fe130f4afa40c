"""`IndicatorEvaluator`: training-free indicators of a freshly initialised (seeded) or
supernet-inherited network, for multi-fidelity ranking and prescreening."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.device import resolve_device
from robnas.evaluators.base import (
    DEFAULT_INDICATORS,
    NetworkEvaluator,
    Scorer,
    seeded_build,
)
from robnas.genotype import Genotype
from robnas.indicators import IndicatorConfig
from robnas.models.supernet import recalibrate
from robnas.space.search_space import SearchSpace

if TYPE_CHECKING:
    from robnas.models.supernet import Supernet


class IndicatorEvaluator(NetworkEvaluator):
    """Training-free scores: indicators of a seeded fresh network, or of the supernet's path.

    data: the images the indicators (and BN recalibration) use. With `supernet`, the network is
    the path's inherited weights at the supernet's size; else a fresh seeded network at `macro`.
    recal_batches > 0 re-estimates BatchNorm statistics on `data` first.
    """

    def __init__(
        self,
        space: SearchSpace,
        macro: dict[str, Any] | None,
        data: ImageData,
        indicators: Sequence[str] = DEFAULT_INDICATORS,
        *,
        supernet: Supernet | None = None,
        dataset: str = "cifar10",
        final_macro: dict[str, Any] | None = None,
        indicator_cfg: IndicatorConfig | Mapping[str, Any] | None = None,
        indicator_samples: int = 64,
        recal_batches: int = 2,
        batch_size: int = 64,
        eval_attack: str | None = None,
        eval_eps: float = 8 / 255,
        eval_steps: int | None = None,
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
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.scorer = Scorer(
            space,
            self.macro if final_macro is None else final_macro,
            self.dataset,
            eval_attack=eval_attack,
            eval_eps=eval_eps,
            eval_steps=eval_steps,
            indicators=indicators,
            indicator_cfg=indicator_cfg,
            indicator_samples=indicator_samples,
            batch_size=batch_size,
        )
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
