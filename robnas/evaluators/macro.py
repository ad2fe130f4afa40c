"""`MacroEvaluator`: score a macro genotype (wrn space) by adversarial training at a small proxy.

Each candidate is built at the proxy size (narrower stages, fewer blocks: the space's preset),
trained from scratch with the search's method (PGD-AT, or FGSM-RS in the tiny preset) for
`low_cfg.epochs` epochs, and attacked on held-out images (`attack`: PGD-20 at 8/255 unless the
objective names another). Multi-fidelity: a candidate
whose low-fidelity objective reaches the `promote_quantile` of the low-fidelity objectives seen
so far (the first one always does) trains `full_cfg.epochs - low_cfg.epochs` more epochs (a
second, warm-up-free cosine cycle from its weights) and is scored again; the result carries its
final scores, `fidelity_epochs`, and the low-fidelity objective as `<objective>_low`.
Parameter counts and MACs are at the deployed size (the space's default macro).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from robnas.data.datasets import ImageData
from robnas.device import resolve_device
from robnas.evaluators.base import Scorer, Scoring, genotype_seed, seeded_build
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.result import Result
from robnas.space.macro import MacroSpace
from robnas.specs import AttackSpec
from robnas.training.loop import train

if TYPE_CHECKING:
    from robnas.config import TrainConfig

log = logging.getLogger(__name__)


class MacroEvaluator:
    def __init__(
        self,
        space: MacroSpace,
        proxy: dict[str, Any],
        train_data: ImageData,
        score_data: ImageData,
        low_cfg: TrainConfig,
        full_cfg: TrainConfig | None = None,
        *,
        objective: str,
        final_macro: dict[str, Any] | None = None,
        dataset: str = "cifar10",
        attack: AttackSpec | None = None,
        promote_quantile: float = 0.5,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        if len(train_data) == 0 or len(score_data) == 0:
            raise ValueError("train_data and score_data must both hold images")
        self.space, self.proxy, self.dataset = space, dict(proxy), dataset
        self.final_macro = space.resolve_macro() if final_macro is None else dict(final_macro)
        self.train_data, self.score_data = train_data, score_data
        # the trainer validates after its last epoch; the search scores separately, so a token
        # check (8 images, PGD-1) keeps that from doubling the cost
        self.check_data = score_data.take(torch.arange(min(8, len(score_data))))
        self.low_cfg, self.full_cfg = low_cfg, full_cfg
        self.objective = objective
        self.promote_quantile = float(promote_quantile)
        self.seed = int(seed)
        self.device = resolve_device(low_cfg.device)
        self.scorer = Scorer(
            space,
            self.final_macro,
            dataset,
            Scoring(attack=attack or AttackSpec(), batch_size=batch_size),
        )
        self.low_scores: list[float] = []  #: low-fidelity objectives, for the promotion rule

    def _train(self, model: torch.nn.Module, cfg: TrainConfig) -> None:
        train(model, self.train_data, self.check_data, dataclasses.replace(cfg, val_steps=1))

    def promoted(self, low: float) -> bool:
        """Train more when the low-fidelity objective is among the better ones seen so far."""
        self.low_scores.append(low)
        if not math.isfinite(low):
            return False
        finite = [s for s in self.low_scores if math.isfinite(s)]
        return low >= float(np.quantile(finite, self.promote_quantile))

    def evaluate(self, genotype: Genotype) -> Result:
        start = time.perf_counter()
        g = self.space.validate(genotype)
        seed = genotype_seed(self.seed, g)
        model = seeded_build(self.space, g, self.proxy, self.dataset, seed).to(self.device)
        self._train(model, dataclasses.replace(self.low_cfg, seed=seed))
        metrics = self.scorer.model_metrics(model, self.score_data, seed, self.device)
        epochs = self.low_cfg.epochs
        low = metrics.get(self.objective, math.nan)
        more = self.full_cfg.epochs - epochs if self.full_cfg is not None else 0
        if more > 0 and self.full_cfg is not None and self.promoted(low):
            cfg = dataclasses.replace(self.full_cfg, epochs=more, warmup_epochs=0.0, seed=seed + 1)
            self._train(model, cfg)
            metrics = self.scorer.model_metrics(model, self.score_data, seed, self.device)
            epochs += more
        metrics = {**metrics, f"{self.objective}_low": low, "fidelity_epochs": float(epochs)}
        finite = all(math.isfinite(v) for v in metrics.values())
        if not finite:
            log.warning("non-finite metrics for %s: %s", g.to_str(), metrics)
        return Result(
            metrics,
            sizing.num_params(self.space, g, self.final_macro, self.dataset),
            time.perf_counter() - start,
            "ok" if finite else "failed",
        )
