"""`LowFidelityEvaluator`: train a small copy of the cell normally for a fixed short budget, then
measure it on held-out images under weak attacks (a cheap stand-in for a fully trained cell).

The NB201 robustness dataset trained every cell normally and attacked it at eps = 1/255; this
protocol does the same at a fraction of the cost: the cell is built at a small size (NB201:
C=8, N=1), trained with the standard step (`robnas.training.finetune`, method "clean") for
`train_cfg.epochs` over `train_data`, then scored on `score_data` (images the training never
saw) clean, under FGSM and under PGD at `eps`. Besides accuracies it reports margins (the true
class's logit minus the best other, averaged over the images; continuous, so less noisy than
0/1 hits on a few hundred images) and their drop under attack.

Every genotype is charged the same: the same training images in an order and an initialisation
seeded from (seed, genotype), the same scoring images, the same attacks.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from robnas.attacks import make_attack
from robnas.attacks.base import frozen_model
from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.device import resolve_device
from robnas.errors import check_name
from robnas.evaluators.base import NetworkEvaluator, Scorer, Scoring, seeded_build
from robnas.genotype import Genotype
from robnas.space.search_space import SearchSpace
from robnas.training.finetune import finetune

if TYPE_CHECKING:
    from robnas.config import TrainConfig

#: metric keys of one low-fidelity evaluation (besides the structural ones)
LOWFI_KEYS = (
    "clean_acc",
    "fgsm_acc",
    "pgd_acc",
    "clean_margin",
    "fgsm_margin",
    "pgd_margin",
)


def margins(logits: Tensor, labels: Tensor) -> Tensor:
    """Per image: the true class's logit minus the largest other logit (> 0 where right)."""
    true = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - others.amax(1)


class WeakAttackScorer(Scorer):
    """Clean, FGSM and PGD (`pgd_steps` steps of eps/4 after a random start) accuracy and mean
    margin at one eps, from one pass over the scoring images in batches. Robust accuracy counts
    an image only if it is right both clean and attacked."""

    def __init__(
        self,
        space: SearchSpace,
        final_macro: dict[str, Any],
        dataset: str,
        *,
        eps: float,
        pgd_steps: int,
        batch_size: int,
    ) -> None:
        super().__init__(
            space,
            final_macro,
            dataset,
            Scoring(attack=None, indicator_samples=1, batch_size=batch_size),
        )
        self.eval_eps = float(eps)
        if pgd_steps < 1:
            raise ValueError(f"pgd_steps must be >= 1, got {pgd_steps}")
        self.pgd_steps = int(pgd_steps)

    def model_metrics(
        self, model: nn.Module, data: ImageData, seed: int, device: torch.device
    ) -> dict[str, float]:
        fgsm = make_attack("fgsm", eps=self.eval_eps, seed=seed)
        pgd = make_attack("pgd", eps=self.eval_eps, steps=self.pgd_steps, seed=seed)
        generator = torch.Generator(device=device).manual_seed(seed)
        images, labels = data.floats(), data.labels
        hits = {k: torch.zeros((), device=device) for k in ("clean", "fgsm", "pgd")}
        gaps = {k: torch.zeros((), device=device) for k in ("clean", "fgsm", "pgd")}
        for start in range(0, len(data), self.batch_size):
            x = images[start : start + self.batch_size].to(device)
            y = labels[start : start + self.batch_size].to(device)
            inputs = {
                "clean": x,
                "fgsm": fgsm(model, x, y, generator=generator),
                "pgd": pgd(model, x, y, generator=generator),
            }
            with frozen_model(model), torch.no_grad():
                outputs = {k: model(v).float() for k, v in inputs.items()}
            right = outputs["clean"].argmax(1) == y
            for key, logits in outputs.items():
                hits[key] += (right & (logits.argmax(1) == y)).sum()
                gaps[key] += margins(logits, y).sum()
        n = len(data)
        out = {f"{k}_acc": float(v) / n for k, v in hits.items()}
        out |= {f"{k}_margin": float(v) / n for k, v in gaps.items()}
        return out


class LowFidelityEvaluator(NetworkEvaluator):
    """Build the genotype at `macro` (a small size) from a seeded initialisation, train it
    normally for `train_cfg` on `train_data`, score it on `score_data` (module docstring).
    Structural metrics (`num_params`, FLOPs, density) are those of `final_macro`, the deployed
    size a budget binds."""

    def __init__(
        self,
        space: SearchSpace,
        macro: dict[str, Any],
        train_data: ImageData,
        score_data: ImageData,
        train_cfg: TrainConfig,
        *,
        dataset: str = "cifar10",
        eps: float = 1 / 255,
        pgd_steps: int = 3,
        final_macro: dict[str, Any] | None = None,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if len(train_data) == 0 or len(score_data) == 0:
            raise ValueError("train_data and score_data must both hold images")
        if train_cfg.method != "clean":
            # the ground truth this protocol stands in for trained its networks normally
            train_cfg = dataclasses.replace(train_cfg, method="clean")
        self.space = space
        self.macro = dict(macro)
        self.train_data = train_data
        self.score_data = score_data
        self.train_cfg = train_cfg
        self.dataset = dataset
        self.device = resolve_device(device if device is not None else train_cfg.device)
        self.seed = int(seed)
        self.scorer = WeakAttackScorer(
            space,
            self.macro if final_macro is None else final_macro,
            dataset,
            eps=eps,
            pgd_steps=pgd_steps,
            batch_size=batch_size,
        )
        self.last_train: dict[str, float] = {}
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        model = seeded_build(self.space, genotype, self.macro, self.dataset, seed).to(self.device)
        generator = torch.Generator().manual_seed(seed)
        self.last_train = finetune(model, self.train_data, self.train_cfg, generator=generator)
        return model.eval(), self.score_data, self.device


@dataclasses.dataclass(frozen=True)
class LowFidelity:
    """One fidelity of the low-fidelity protocol: the size the cell is trained at (`C`, `N`), the
    normal training (`train_images` class-balanced training images, `epochs` at `batch_size`,
    peak learning rate `lr` at batch 128, cosine to 0, random crops and flips if `augment`) and
    the scoring (`score_images` class-balanced, shuffled images held out of the training split;
    FGSM and PGD-`pgd_steps` at `eps`)."""

    name: str
    C: int
    N: int
    train_images: int
    epochs: int
    batch_size: int
    lr: float
    score_images: int
    pgd_steps: int
    augment: bool
    eps: float = 1 / 255
    held_out: int = 2000  #: images held out of the training split, the scoring images' pool

    def __post_init__(self) -> None:
        counts = (self.C, self.N, self.train_images, self.epochs, self.batch_size)
        if min(counts) < 1 or self.pgd_steps < 1:
            raise ValueError(f"fidelity {self.name}: sizes, counts and steps must be >= 1")
        if not 0 < self.score_images <= self.held_out:
            raise ValueError(f"fidelity {self.name}: need 0 < score_images <= held_out")

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_batch=128,
            method="clean",
            augment=self.augment,
            warmup_epochs=0.0,
            final_lr=0.0,
            weight_decay=5e-4,
            device="cpu",
        )


#: The fidelities measured (experiments/lowfi_fidelity.py). `1epoch-2k` is the setting the
#: ranking work measured on its third draw (ranked nothing); `3epoch-4k` trains on twice the
#: images for three epochs (about 4x the optimiser steps of `1epoch-2k` at batch 64).
FIDELITIES: dict[str, LowFidelity] = {
    f.name: f
    for f in (
        LowFidelity("1epoch-2k", 8, 1, 2048, 1, 128, 0.2, 256, 3, augment=False),
        LowFidelity("3epoch-4k", 8, 1, 4096, 3, 64, 0.2, 512, 3, augment=True),
    )
}


def lowfi_data(
    fidelity: LowFidelity, *, dataset: str, data_dir: Any, seed: int
) -> tuple[ImageData, ImageData]:
    """(training images, scoring images) of a fidelity: both from the training split, disjoint;
    the scoring images class-balanced and shuffled (never the first k of a class-ordered set)."""

    full = load_dataset(
        dataset, "train", data_dir=data_dir, limit=fidelity.train_images + fidelity.held_out,
        seed=seed,
    )  # fmt: skip
    train, held = split_train_val(full, fidelity.held_out, seed=seed)
    score = held.subset(fidelity.score_images, seed)
    order = torch.randperm(len(score), generator=torch.Generator().manual_seed(seed))
    return train.subset(min(fidelity.train_images, len(train)), seed), score.take(order)


def make_lowfi_evaluator(
    fidelity: LowFidelity | str,
    space: SearchSpace,
    *,
    final_macro: dict[str, Any],
    dataset: str = "cifar10",
    data_dir: Any = None,
    seed: int = 0,
) -> LowFidelityEvaluator:
    """The low-fidelity evaluator of a fidelity (a `LowFidelity` or a name in FIDELITIES)."""

    f = (
        fidelity
        if isinstance(fidelity, LowFidelity)
        else FIDELITIES[check_name("fidelity", fidelity, FIDELITIES)]
    )
    train, score = lowfi_data(f, dataset=dataset, data_dir=data_dir, seed=seed)
    return LowFidelityEvaluator(
        space,
        space.resolve_macro(C=f.C, N=f.N),
        train,
        score,
        f.train_config(),
        dataset=dataset,
        eps=f.eps,
        pgd_steps=f.pgd_steps,
        final_macro=final_macro,
        device="cpu",
        seed=seed,
    )
