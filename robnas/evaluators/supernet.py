"""`SupernetEvaluator`: RobNet's search protocol on inherited weights.

The path's weights are inherited from the supernet, finetuned briefly with PGD-AT on the training
split (RobNet: 3 epochs), BatchNorm is recalibrated, then clean and robust accuracy are measured
on held-out images: never the test split, and never images the supernet trained on
(`robnas.checkpoint.unseen_images`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.evaluators.base import DEFAULT_INDICATORS, NetworkEvaluator, Scorer, Scoring
from robnas.genotype import Genotype
from robnas.models.supernet import recalibrate
from robnas.space.search_space import SearchSpace
from robnas.training.loop import finetune

if TYPE_CHECKING:
    from robnas.config import TrainConfig
    from robnas.models.supernet import Supernet


class SupernetEvaluator(NetworkEvaluator):
    """Inherit the path's weights, finetune (PGD-AT), recalibrate BN, score on validation data.

    finetune_cfg: the short schedule given to `robnas.training.loop.finetune` (RobNet: 3 epochs of
    PGD-7 AT); None skips finetuning. scoring: what is measured (default: PGD-20 at 8/255 and
    the FSP and Jacobian indicators); its batch size also recalibrates BN. recal_batches:
    training batches for BN recalibration (default: finetune_cfg.recal_batches, else 4).
    final_macro: the size `num_params` and FLOPs refer to (default the supernet's). Never pass
    the test split as val_data.
    """

    def __init__(
        self,
        supernet: Supernet,
        space: SearchSpace,
        train_data: ImageData,
        val_data: ImageData,
        *,
        finetune_cfg: TrainConfig | None,
        scoring: Scoring | None = None,
        final_macro: dict[str, Any] | None = None,
        recal_batches: int | None = None,
        seed: int = 0,
    ) -> None:
        if len(val_data) == 0 or len(train_data) == 0:
            raise ValueError("train_data and val_data must both hold images")
        self.supernet = supernet
        self.space = space
        self.macro = dict(supernet.macro)
        self.train_data = train_data
        self.val_data = val_data
        self.finetune_cfg = finetune_cfg
        default_recal = finetune_cfg.recal_batches if finetune_cfg is not None else 4
        self.recal_batches = default_recal if recal_batches is None else int(recal_batches)
        scoring = scoring or Scoring(indicators=DEFAULT_INDICATORS)
        self.batch_size = int(scoring.batch_size)
        self.seed = int(seed)
        final = supernet.macro if final_macro is None else final_macro
        self.scorer = Scorer(space, final, supernet.dataset, scoring)
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        model = self.supernet.extract(genotype)
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        if self.finetune_cfg is not None:
            finetune(model, self.train_data, self.finetune_cfg, generator=generator)
        recalibrate(model, self.train_data, self.recal_batches, self.batch_size, generator, device)
        return model, self.val_data, device
