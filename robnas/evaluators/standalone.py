"""`StandaloneEvaluator`: train the genotype from scratch, then score it (ground truth for the
cheap scores)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.device import resolve_device
from robnas.evaluators.base import NetworkEvaluator, Scorer, Scoring, seeded_build
from robnas.genotype import Genotype
from robnas.space.search_space import SearchSpace
from robnas.training.loop import train

if TYPE_CHECKING:
    from robnas.config import TrainConfig


class StandaloneEvaluator(NetworkEvaluator):
    """Train the genotype from scratch at `macro` with `robnas.training.loop.train`, then score it.

    The initialisation is seeded from (seed, genotype); training randomness follows
    train_cfg.seed. With out_dir, each genotype trains in out_dir/<genotype key> (resumable).
    scoring: what is measured (default: PGD-20 at 8/255, no indicators).
    """

    def __init__(
        self,
        space: SearchSpace,
        macro: dict[str, Any],
        train_data: ImageData,
        val_data: ImageData,
        train_cfg: TrainConfig,
        *,
        dataset: str = "cifar10",
        scoring: Scoring | None = None,
        final_macro: dict[str, Any] | None = None,
        out_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if len(val_data) == 0 or len(train_data) == 0:
            raise ValueError("train_data and val_data must both hold images")
        self.space = space
        self.macro = dict(macro)
        self.train_data = train_data
        self.val_data = val_data
        self.train_cfg = train_cfg
        self.dataset = dataset
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.device = resolve_device(device if device is not None else train_cfg.device)
        self.seed = int(seed)
        final = self.macro if final_macro is None else final_macro
        self.scorer = Scorer(space, final, dataset, scoring or Scoring())
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        model = seeded_build(self.space, genotype, self.macro, self.dataset, seed).to(self.device)
        run_dir = self.out_dir / genotype.key if self.out_dir is not None else None
        train(
            model,
            self.train_data,
            self.val_data,
            self.train_cfg,
            run_dir,
            resume=run_dir is not None,
        )
        return model, self.val_data, self.device
