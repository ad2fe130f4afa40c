"""Frozen configuration: `TrainConfig` and one `Preset` per name (tiny, small, paper).

One home for presets so every command, test and experiment agrees on what `--preset tiny`
means: `get_preset(name)` is the only lookup and refuses unknown names with one message form.
`with_overrides(cfg, **kw)` applies CLI/TOML values (None = keep), rejecting unknown keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from robnas.errors import ConfigError, check_name
from robnas.specs import DEFAULT_EPS, Size

METHODS = ("pgd", "trades", "fgsm-rs", "clean")  # clean: standard training, no attack

C = TypeVar("C")


@dataclass(frozen=True)
class TrainConfig:
    """Adversarial training. `lr` is the peak rate at batch `lr_batch`; it scales linearly with
    `batch_size` (RobNet: 0.1 at 128 = 1.2 at 1536). Schedule: linear warm-up from
    `warmup_start * peak` over `warmup_epochs`, then cosine down to `final_lr * peak`.
    The first `clean_epochs` (a fraction is fine) train on clean images whatever `method` is:
    a supernet that starts adversarially stays near chance for minutes. Then
    the training attack's eps (and step size) rise linearly from 0 to `eps` over
    `eps_ramp_epochs` (0: the full eps at once), a curriculum as in Cai et al. 2018."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    lr_batch: int = 128
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    warmup_start: float = 0.02 / 1.2
    final_lr: float = 0.001 / 1.2
    method: str = "pgd"
    clean_epochs: float = 0.0
    eps_ramp_epochs: float = 0.0
    eps: float = DEFAULT_EPS
    alpha: float = 2 / 255
    steps: int = 7
    beta: float = 6.0
    attack_train_mode: bool = False  # craft training attacks with BN in train mode (else eval)
    val_every: int = 1
    val_size: int = 1000  # images of the held-out split attacked each validation
    val_steps: int = 20  # PGD-k for robust validation
    val_paths: int = 2  # supernet: sampled paths validated (BN recalibrated per path)
    recal_batches: int = 4
    sampler: str = "uniform_op"  # a supernet's path sampler (robnas.models.samplers)
    augment: bool = True
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr_batch": self.lr_batch,
            "steps": self.steps,
            "val_every": self.val_every,
            "val_steps": self.val_steps,
            "val_paths": self.val_paths,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ConfigError("need lr > 0, 0 <= momentum < 1 and weight_decay >= 0")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ConfigError(f"warmup_epochs must lie in [0, epochs={self.epochs}]")
        if not 0 <= self.clean_epochs <= self.epochs:
            raise ConfigError(f"clean_epochs must lie in [0, epochs={self.epochs}]")
        if not 0 <= self.eps_ramp_epochs <= self.epochs - self.clean_epochs:
            raise ConfigError(
                f"eps_ramp_epochs must lie in [0, epochs - clean_epochs = "
                f"{self.epochs - self.clean_epochs:g}]"
            )
        if not 0 < self.eps <= 1 or self.alpha <= 0:
            raise ConfigError("need 0 < eps <= 1 and alpha > 0 (fractions of 1, e.g. 8/255)")
        if self.val_size < 0 or self.recal_batches < 0 or self.beta < 0:
            raise ConfigError("val_size, recal_batches and beta must be >= 0")

    @property
    def peak_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_batch

    def clean_steps(self, steps_per_epoch: int) -> int:
        """Optimiser steps, counted from the start, that train on clean images."""
        return round(self.clean_epochs * steps_per_epoch)

    def eps_scale(self, step: int, steps_per_epoch: int) -> float:
        """The fraction of `eps` the training attack uses at optimiser step `step` (from 0):
        0 in the clean start, then rising linearly to 1 over `eps_ramp_epochs`."""
        clean = self.clean_steps(steps_per_epoch)
        if step < clean:
            return 0.0
        ramp = round(self.eps_ramp_epochs * steps_per_epoch)
        return min(1.0, (step - clean + 1) / ramp) if ramp > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TINY_TRAIN = TrainConfig(
    # About nine minutes of a 2-core CPU (README: under 15 for the whole job): one pass over
    # every training image (many distinct images did far more than epochs on a few) at batch
    # 32 (more updates: 128 and 64 learned less from the same pass; these and the settings below
    # are compared in experiments/results/supernet_learning_speed),
    # peak LR 0.1 (0.05 and 0.025 learned less), warmed up over 10% then cosine to 0; paths
    # shrink from the whole supernet to uniform ones over the first half (dense_start: every
    # weight learns from the first step); the first 30% clean, then FGSM with random start at
    # 8/255 (fast AT: two passes a step instead of PGD-3's four), crafted with BatchNorm in
    # train mode (the supernet's running statistics average many paths: crafted in eval mode,
    # 100 steps gave 0.3% PGD-10 against 6.5%). No augmentation: in one pass no image is seen
    # twice, so random crops only shift the training images away from the test ones (without
    # them 36-38% clean against 34%, three seeds). After the clean start eps rises from 0 to
    # 8/255 over 0.3 of the pass: a trade, about 2 points of clean accuracy for 1.6 of PGD-10
    # (39% / 23% against 37% / 25%, two seeds). PGD-10 validation on the 500 held-out images,
    # two paths, BatchNorm recalibrated on 8 x 32 images each.
    epochs=1,
    method="fgsm-rs",
    clean_epochs=0.3,
    eps_ramp_epochs=0.3,
    attack_train_mode=True,
    batch_size=32,
    lr=0.4,  # at batch 128, as every preset states it: 0.1 at batch 32
    sampler="dense_start",
    augment=False,
    weight_decay=5e-4,
    warmup_epochs=0.1,
    warmup_start=0.01,
    final_lr=0.0,
    steps=3,
    alpha=3 / 255,
    val_size=500,
    val_steps=10,
    val_paths=2,
    recal_batches=8,
)
# RobNet (Guo et al. 2020): PGD-7 (8/255, 2/255), batch 1536 at lr 1.2, 20 warm-up epochs
# from 0.02, then 150 cosine epochs down to 0.001; PGD-20 validation.
_PAPER_TRAIN = TrainConfig(
    epochs=170,
    batch_size=1536,
    lr=0.1,
    lr_batch=128,
    warmup_epochs=20,
    warmup_start=0.02 / 1.2,
    final_lr=0.001 / 1.2,
    steps=7,
    alpha=2 / 255,
    val_size=1000,
    val_steps=20,
)


@dataclass(frozen=True)
class CandidateProtocol:
    """How a network search scores candidates: `trials` of them by default, each finetuned
    `finetune_epochs` on `finetune_images` training images (None: all of them) and scored on
    `score_images` held-out images (None: all of them)."""

    trials: int
    finetune_epochs: int
    finetune_images: int | None = None
    score_images: int | None = None


@dataclass(frozen=True)
class Preset:
    """Everything `--preset NAME` means, for every command: a training schedule (`train`, on
    `train_images` images, None = the whole training split minus the held-out part, with
    `val_images` held out of the training split, never the test split) and a candidate
    protocol (`candidates`).

    A preset also names default sizes (names of a space's `[sizes]` tables, `Size.default_of`):
    `size` is what `train`, `arch`, `evaluate`, `export` and `supernet train` build,
    `search_size` the proxy a search trains and scores candidates at, `final_size` the
    deployed network (`--budget`, `--final-train` and `robnas export` refer to it). `--size`
    and `--final-size` override them; a space without a size of that name uses its default
    `[macro]`.
    """

    name: str
    train: TrainConfig
    candidates: CandidateProtocol
    train_images: int | None
    val_images: int
    size: str
    search_size: str
    final_size: str = "paper"

    def default_size(self, which: str = "size") -> Size:
        """The default size `which` ("size", "search_size" or "final_size") of this preset."""
        return Size.default_of(getattr(self, which))

    def finetune_config(
        self, train: TrainConfig | None = None, epochs: int | None = None
    ) -> TrainConfig | None:
        """The per-candidate finetune schedule (no warm-up, no clean start, no eps ramp) of
        `epochs` (default the protocol's `finetune_epochs`), None when that is 0."""
        epochs = self.candidates.finetune_epochs if epochs is None else epochs
        if epochs == 0:
            return None
        base = self.train if train is None else train
        return dataclasses.replace(
            base, epochs=epochs, warmup_epochs=0.0, clean_epochs=0.0, eps_ramp_epochs=0.0
        )


# RobNet's search-time size (C=16, 8 layers) with the default schedule, and RobNet's candidate
# protocol: 1000 candidates, each finetuned 3 epochs on the whole training split, scored on every
# held-out image.
_SMALL = Preset(
    name="small",
    train=TrainConfig(),
    candidates=CandidateProtocol(trials=1000, finetune_epochs=3),
    train_images=None,
    val_images=5000,
    size="small",
    search_size="small",
)

PRESETS: dict[str, Preset] = {
    # CPU minutes: searches a tiny proxy; the budget still binds the deployed (paper) size.
    "tiny": Preset(
        name="tiny",
        train=_TINY_TRAIN,
        candidates=CandidateProtocol(
            trials=10, finetune_epochs=1, finetune_images=500, score_images=250
        ),
        train_images=None,
        val_images=500,
        size="tiny",
        search_size="tiny",
    ),
    "small": _SMALL,
    # RobNet: the small preset's proxy and candidate protocol with the paper's schedule; the
    # networks it trains are built at the paper size.
    "paper": dataclasses.replace(_SMALL, name="paper", train=_PAPER_TRAIN, size="paper"),
}

# The training schedules by name (derived from PRESETS, never edited by hand).
TRAIN_PRESETS: dict[str, TrainConfig] = {k: p.train for k, p in PRESETS.items()}


def get_preset(name: str) -> Preset:
    """The preset called `name`; UnknownName (`unknown preset 'x'; known: ...`) otherwise."""
    return PRESETS[check_name("preset", name, PRESETS)]


def with_overrides(cfg: C, **overrides: Any) -> C:
    """A copy of a frozen config with the non-None overrides applied."""
    fields = {f.name for f in dataclasses.fields(cfg)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    values = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(cfg, **values)  # type: ignore[type-var]
