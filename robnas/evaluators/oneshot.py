"""Evaluators: genotype -> Result(metrics, num_params, seconds, status).

- `SupernetEvaluator`: RobNet's search protocol. The path's weights are inherited from the
  supernet, finetuned briefly with PGD-AT on the training split (RobNet: 3 epochs), BatchNorm is
  recalibrated, then clean and PGD-20 accuracy are measured on the held-out validation split.
- `StandaloneEvaluator`: trains the genotype from scratch (ground truth for the cheap scores).
- `IndicatorEvaluator`: training-free indicators of a freshly initialised (seeded) or
  supernet-inherited network, for multi-fidelity ranking.

Every evaluator also reports density, edge density and FLOPs, and `num_params`, at the final
macro size (the size the winner will be trained at), whatever size it scored the genotype at.
Randomness: each genotype gets its own torch.Generator seeded from (seed, genotype key), so a
result does not depend on which genotypes were evaluated before it. No global seeding.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from robnas.attacks import make_attack
from robnas.data.datasets import ImageData, batches
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS, STRUCTURAL, IndicatorConfig, as_config
from robnas.indicators.robust import robust_accuracy
from robnas.indicators.structure import genotype_structure
from robnas.result import Result
from robnas.space.search_space import SearchSpace

if TYPE_CHECKING:
    from robnas.config import TrainConfig
    from robnas.models.supernet import Supernet

log = logging.getLogger(__name__)

DEFAULT_INDICATORS = ("fsp_dist", "jac_norm")


class Evaluator(Protocol):
    def evaluate(self, genotype: Genotype) -> Result: ...


def genotype_seed(seed: int, genotype: Genotype) -> int:
    """A 31-bit seed for one genotype, stable across processes and evaluation orders."""
    return zlib.crc32(f"{int(seed)}:{genotype.key}".encode()) & 0x7FFFFFFF


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seeded_build(
    space: SearchSpace, genotype: Genotype, macro: dict[str, Any], dataset: str, seed: int
) -> nn.Module:
    """Build with a reproducible initialisation; the global RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(genotype, macro, dataset)


class Scorer:
    """What every evaluator measures on a (trained or inherited) network.

    Clean and robust accuracy (`eval_attack`, e.g. "pgd20" -> key `pgd20_acc`) on all of
    `val_data`, weight-dependent indicators on its first `indicator_samples` images, and the
    structural metrics at `final_macro`.
    """

    def __init__(
        self,
        space: SearchSpace,
        final_macro: dict[str, Any],
        dataset: str,
        *,
        eval_attack: str | None,
        eval_eps: float,
        indicators: Sequence[str],
        indicator_cfg: IndicatorConfig | Mapping[str, Any] | None,
        indicator_samples: int,
        batch_size: int,
    ) -> None:
        unknown = [name for name in indicators if name not in INDICATORS]
        if unknown:
            INDICATORS.get(unknown[0])  # raises UnknownName listing the known ones
        if eval_attack is not None:
            make_attack(eval_attack, eps=eval_eps)  # fail early on an unknown attack
        if indicator_samples < 1 or batch_size < 1:
            raise ValueError("indicator_samples and batch_size must be >= 1")
        self.space = space
        self.final_macro = dict(final_macro)
        self.dataset = dataset
        self.eval_attack = eval_attack
        self.eval_eps = float(eval_eps)
        # structural ones are measured at the final size from the genotype, never on the model
        self.indicators = tuple(n.lower() for n in indicators if n.lower() not in STRUCTURAL)
        self.indicator_cfg = as_config(indicator_cfg)
        self.indicator_samples = int(indicator_samples)
        self.batch_size = int(batch_size)

    def structure(self, genotype: Genotype) -> tuple[dict[str, float], int]:
        info = genotype_structure(self.space, genotype, self.final_macro, self.dataset)
        num_params = int(info.pop("num_params"))
        return info, num_params

    def model_metrics(
        self, model: nn.Module, data: ImageData, seed: int, device: torch.device
    ) -> dict[str, float]:
        images, labels = data.floats().to(device), data.labels.to(device)
        metrics: dict[str, float] = {}
        if self.eval_attack is not None:
            attack = make_attack(self.eval_attack, eps=self.eval_eps, seed=seed)
            generator = torch.Generator(device=device).manual_seed(seed)
            clean, robust = robust_accuracy(
                model, images, labels, attack, batch_size=self.batch_size, generator=generator
            )
            metrics["clean_acc"] = clean
            metrics[f"{self.eval_attack.lower()}_acc"] = robust
        n = min(self.indicator_samples, len(data))
        cfg = dataclasses.replace(self.indicator_cfg, seed=seed)
        for name in self.indicators:
            metrics.update(INDICATORS.get(name)(model, images[:n], labels[:n], cfg=cfg))
        return metrics


def _result(metrics: dict[str, float], num_params: int, start: float, genotype: Genotype) -> Result:
    finite = all(math.isfinite(v) for v in metrics.values())
    if not finite:
        log.warning("non-finite metrics for %s: %s", genotype.to_str(), metrics)
    return Result(metrics, num_params, time.perf_counter() - start, "ok" if finite else "failed")


def _recalibrate(
    model: nn.Module,
    data: ImageData,
    n_batches: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> None:
    from robnas.models.supernet import recalibrate_bn

    if n_batches > 0:
        stream = batches(data, batch_size, shuffle=True, generator=generator, device=device)
        recalibrate_bn(model, stream, n_batches=n_batches)


class SupernetEvaluator:
    """Inherit the path's weights, finetune (PGD-AT), recalibrate BN, score on validation data.

    finetune_cfg: the short schedule given to `robnas.training.loop.finetune` (RobNet: 3 epochs of PGD-7
    AT); None skips finetuning. recal_batches: training batches for BN recalibration (default:
    finetune_cfg.recal_batches, else 4). final_macro: the size `num_params` and FLOPs refer to
    (default the supernet's). Never pass the test split as val_data.
    """

    def __init__(
        self,
        supernet: Supernet,
        space: SearchSpace,
        train_data: ImageData,
        val_data: ImageData,
        *,
        finetune_cfg: TrainConfig | None,
        eval_attack: str | None = "pgd20",
        eval_eps: float = 8 / 255,
        final_macro: dict[str, Any] | None = None,
        indicators: Sequence[str] = DEFAULT_INDICATORS,
        indicator_cfg: IndicatorConfig | Mapping[str, Any] | None = None,
        indicator_samples: int = 64,
        recal_batches: int | None = None,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        if len(val_data) == 0 or len(train_data) == 0:
            raise ValueError("train_data and val_data must both hold images")
        self.supernet = supernet
        self.space = space
        self.train_data = train_data
        self.val_data = val_data
        self.finetune_cfg = finetune_cfg
        default_recal = finetune_cfg.recal_batches if finetune_cfg is not None else 4
        self.recal_batches = default_recal if recal_batches is None else int(recal_batches)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.scorer = Scorer(
            space,
            supernet.macro if final_macro is None else final_macro,
            supernet.dataset,
            eval_attack=eval_attack,
            eval_eps=eval_eps,
            indicators=indicators,
            indicator_cfg=indicator_cfg,
            indicator_samples=indicator_samples,
            batch_size=batch_size,
        )

    def evaluate(self, genotype: Genotype) -> Result:
        start = time.perf_counter()
        g = self.space.validate(genotype, self.supernet.macro)
        seed = genotype_seed(self.seed, g)
        model = self.supernet.extract(g)
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        if self.finetune_cfg is not None:
            from robnas.training.loop import finetune

            finetune(model, self.train_data, self.finetune_cfg, generator=generator)
        _recalibrate(model, self.train_data, self.recal_batches, self.batch_size, generator, device)
        metrics = self.scorer.model_metrics(model, self.val_data, seed, device)
        structure, num_params = self.scorer.structure(g)
        return _result({**metrics, **structure}, num_params, start, g)


class StandaloneEvaluator:
    """Train the genotype from scratch at `macro` with `robnas.training.loop.train`, then score it.

    The initialisation is seeded from (seed, genotype); training randomness follows
    train_cfg.seed. With out_dir, each genotype trains in out_dir/<genotype key> (resumable).
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
        eval_attack: str | None = "pgd20",
        eval_eps: float = 8 / 255,
        final_macro: dict[str, Any] | None = None,
        indicators: Sequence[str] = (),
        indicator_cfg: IndicatorConfig | Mapping[str, Any] | None = None,
        indicator_samples: int = 64,
        batch_size: int = 128,
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
        self.scorer = Scorer(
            space,
            self.macro if final_macro is None else final_macro,
            dataset,
            eval_attack=eval_attack,
            eval_eps=eval_eps,
            indicators=indicators,
            indicator_cfg=indicator_cfg,
            indicator_samples=indicator_samples,
            batch_size=batch_size,
        )

    def evaluate(self, genotype: Genotype) -> Result:
        from robnas.training.loop import train

        start = time.perf_counter()
        g = self.space.validate(genotype, self.macro)
        seed = genotype_seed(self.seed, g)
        model = seeded_build(self.space, g, self.macro, self.dataset, seed).to(self.device)
        run_dir = self.out_dir / g.key if self.out_dir is not None else None
        train(
            model,
            self.train_data,
            self.val_data,
            self.train_cfg,
            run_dir,
            resume=run_dir is not None,
        )
        metrics = self.scorer.model_metrics(model, self.val_data, seed, self.device)
        structure, num_params = self.scorer.structure(g)
        return _result({**metrics, **structure}, num_params, start, g)


class IndicatorEvaluator:
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
            indicators=indicators,
            indicator_cfg=indicator_cfg,
            indicator_samples=indicator_samples,
            batch_size=batch_size,
        )

    def evaluate(self, genotype: Genotype) -> Result:
        start = time.perf_counter()
        g = self.space.validate(genotype, self.macro)
        seed = genotype_seed(self.seed, g)
        if self.supernet is not None:
            model = self.supernet.extract(g)
            device = next(model.parameters()).device
        else:
            device = self.device
            model = seeded_build(self.space, g, self.macro, self.dataset, seed).to(device)
        generator = torch.Generator().manual_seed(seed)
        _recalibrate(model, self.data, self.recal_batches, self.batch_size, generator, device)
        metrics = self.scorer.model_metrics(model, self.data, seed, device)
        structure, num_params = self.scorer.structure(g)
        return _result({**metrics, **structure}, num_params, start, g)
