"""One training step (PGD-AT, TRADES, FGSM-RS, or clean), the optimiser and the LR schedule.

Attack iterations run on a frozen model (input gradients only, no weight-gradient work); only the
final update builds weight gradients. No host synchronisation inside a step: statistics stay on
the device and are read once per epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks import PGD
from robnas.attacks.base import frozen_model, input_grad, project
from robnas.config import TrainConfig
from robnas.device import DevicePolicy


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on conv/linear weights only; none on BatchNorm parameters or biases."""
    no_decay: set[int] = set()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm):
            no_decay.update(id(p) for p in module.parameters(recurse=False))
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for p in model.parameters():
        (plain if id(p) in no_decay or p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        param_groups(model, cfg.weight_decay), lr=cfg.peak_lr, momentum=cfg.momentum
    )


class WarmupCosine:
    """LR factor per step: linear warm-up from `start` to 1, then cosine from 1 down to `final`."""

    def __init__(self, total: int, warmup: int, start: float, final: float) -> None:
        self.total, self.warmup, self.start, self.final = total, warmup, start, final

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.start + (1.0 - self.start) * step / self.warmup
        span = max(1, self.total - self.warmup)
        t = min(1.0, (step - self.warmup) / span)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total, warmup, cfg.warmup_start, cfg.final_lr)
    )


@dataclass
class StepStats:
    """Sums over an epoch, kept on the device (no per-step sync)."""

    loss: Tensor
    adv_correct: Tensor
    seen: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> StepStats:
        return cls(torch.zeros((), device=device), torch.zeros((), device=device))

    def add(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        n = labels.shape[0]
        self.loss += loss.detach() * n
        self.adv_correct += (logits.detach().argmax(1) == labels).sum()
        self.seen += n

    def summary(self) -> dict[str, float]:
        n = max(1, self.seen)
        return {"train_loss": float(self.loss) / n, "train_adv_acc": float(self.adv_correct) / n}


def training_attack(cfg: TrainConfig, *, fp32: bool = True) -> PGD:
    """The attack that crafts training examples: PGD-K (Madry) or FGSM-RS (PGD-1, 1.25 eps)."""
    eval_mode = not cfg.attack_train_mode
    if cfg.method == "fgsm-rs":
        # Wong et al. 2020: uniform start in the ball, one step of 1.25 eps, projected.
        return PGD(cfg.eps, alpha=1.25 * cfg.eps, steps=1, eval_mode=eval_mode, fp32=fp32)
    return PGD(cfg.eps, alpha=cfg.alpha, steps=cfg.steps, eval_mode=eval_mode, fp32=fp32)


def trades_adversary(
    model: nn.Module, images: Tensor, cfg: TrainConfig, generator: torch.Generator
) -> Tensor:
    """TRADES inner max: K signed steps maximising KL(f(x') || f(x)) from x + 0.001 N(0, 1)."""
    with frozen_model(model, mode="keep" if cfg.attack_train_mode else "eval"), torch.enable_grad():
        with torch.no_grad():
            p_clean = F.softmax(model(images), dim=1)
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        adv = (images + 0.001 * noise).clamp(0.0, 1.0)
        for _ in range(cfg.steps):
            adv.requires_grad_(True)
            loss = F.kl_div(F.log_softmax(model(adv), dim=1), p_clean, reduction="sum")
            adv = project(
                adv.detach() + cfg.alpha * input_grad(loss, adv).sign(), images, cfg.eps, "linf"
            )
    return adv.detach()


class TrainObjective(nn.Module):
    """The training loss of one (sub-)batch as one module, so DDP sees exactly one forward per
    backward (TRADES needs two forwards of the network; wrapping both keeps DDP's reducer happy)."""

    def __init__(self, model: nn.Module, method: str, beta: float) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.beta = beta

    def forward(self, images: Tensor, adv: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self.method == "trades":
            # separate forwards, as TRADES does: BN statistics of clean and adv stay apart
            clean, logits = self.model(images), self.model(adv)
            robust = F.kl_div(
                F.log_softmax(logits, dim=1), F.softmax(clean, dim=1), reduction="batchmean"
            )
            return F.cross_entropy(clean, labels) + self.beta * robust, logits
        logits = self.model(adv)  # `adv` is the clean batch for --method clean
        return F.cross_entropy(logits, labels), logits


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside DDP and/or a TrainObjective."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    return inner.model if isinstance(inner, TrainObjective) else inner


class AdversarialStep:
    """Callable doing one full training step on a batch; returns (loss, logits on the trained
    input). `chunks` > 1 accumulates gradients over strided sub-batches (`images[k::chunks]`)
    with one optimiser step, skipping DDP's gradient all-reduce (`no_sync`) on all but the last."""

    def __init__(
        self,
        cfg: TrainConfig,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        *,
        autocast: bool = False,
        policy: DevicePolicy | None = None,
    ) -> None:
        self.cfg = cfg
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.autocast = autocast or (policy is not None and policy.bf16)
        self.attack = training_attack(cfg, fp32=not self.autocast)

    def _amp(self, device: torch.device) -> contextlib.AbstractContextManager[object]:
        if self.autocast:
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def craft(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        eps_scale: float = 1.0,
    ) -> Tensor:
        """The training input of a batch: adversarial (eps and step scaled by `eps_scale`), or the
        batch itself for `clean`."""
        if self.cfg.method == "clean":
            return images
        cfg, attack = self.cfg, self.attack
        if eps_scale != 1:  # the eps ramp: a weaker attack of the same kind
            cfg = dataclasses.replace(cfg, eps=cfg.eps * eps_scale, alpha=cfg.alpha * eps_scale)
            attack = training_attack(cfg, fp32=attack.fp32)
        if cfg.method == "trades":
            return trades_adversary(model, images, cfg, generator)
        return attack(model, images, labels, generator=generator)

    def __call__(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator | Sequence[torch.Generator],
        *,
        attack_model: nn.Module | None = None,
        chunks: int = 1,
        eps_scale: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """`model`: a network, a TrainObjective, or DDP around one. `attack_model` (default: the
        unwrapped network) crafts the inputs. `generator`: one, or one per chunk. `eps_scale`: the
        fraction of eps this step's attack uses (`cfg.eps_scale`: 0 in the clean start of
        `cfg.clean_epochs`, trained on the clean batch, then the eps ramp)."""
        objective = (
            model
            if isinstance(getattr(model, "module", model), TrainObjective)
            else TrainObjective(model, self.cfg.method, self.cfg.beta)
        )
        target = attack_model if attack_model is not None else unwrap(model)
        gens = [generator] * chunks if isinstance(generator, torch.Generator) else list(generator)
        if len(gens) != chunks:
            raise ValueError(f"need {chunks} generators, got {len(gens)}")
        self.optimizer.zero_grad(set_to_none=True)
        losses, logits_all = [], torch.empty(0)
        for k in range(chunks):
            x, y = (images, labels) if chunks == 1 else (images[k::chunks], labels[k::chunks])
            target.train()
            with self._amp(x.device):
                adv = x if eps_scale == 0 else self.craft(target, x, y, gens[k], eps_scale)
            last = k == chunks - 1
            no_sync = getattr(objective, "no_sync", None)
            sync = no_sync() if no_sync is not None and not last else contextlib.nullcontext()
            with sync:
                with self._amp(x.device):
                    loss, logits = objective(x, adv, y)
                (loss / chunks if chunks > 1 else loss).backward()
            losses.append(loss.detach())
            if chunks == 1:
                logits_all = logits.detach()
            else:
                if k == 0:
                    logits_all = logits.new_empty(images.shape[0], logits.shape[1])
                logits_all[k::chunks] = logits.detach()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return torch.stack(losses).mean(), logits_all
