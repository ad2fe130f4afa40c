"""The common shape of every attack: configured once, called as `attack(model, images, labels)`.

The base class owns the bookkeeping that every attack must get right: the model's train/eval
modes, its parameters' `requires_grad` flags and buffers are restored exactly; parameters are
frozen while attacking so no weight gradient is ever built (`.grad` cannot change); the result is
projected into the eps-ball and [0, 1]; fp32 unless told otherwise.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

NORMS = ("linf", "l2")


def check_eps(eps: float | None, norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if eps is None:
        return
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


MODES = ("eval", "train", "keep")


@contextlib.contextmanager
def frozen_model(model: nn.Module, *, mode: str = "eval") -> Iterator[None]:
    """Run `model` with frozen parameters in `mode`; restore everything afterwards.

    `mode` is "eval", "train" (BatchNorm normalises with batch statistics) or "keep" (each
    module keeps its own flag: a model may mix modes). Per-module `training` flags are saved and
    restored; when any module runs in train mode its buffers (BatchNorm running statistics) are
    restored too, so nothing the caller can see has changed.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    modes = [(module, module.training) for module in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    runs_training = mode == "train" or (mode == "keep" and any(m for _, m in modes))
    saved_buffers = [(b, b.detach().clone()) for b in model.buffers()] if runs_training else []
    try:
        for p in params:
            p.requires_grad_(False)
        if mode != "keep":
            model.train(mode == "train")
        yield
    finally:
        for module, training in modes:
            module.training = training
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        with torch.no_grad():
            for buffer, copy in saved_buffers:
                buffer.copy_(copy)


def flat_norm(x: Tensor, norm: str) -> Tensor:
    """Per-example norm of a batch, shape (N,)."""
    flat = x.reshape(x.shape[0], -1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    return flat.norm(p=2, dim=1)


def _expand(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def project(adv: Tensor, images: Tensor, eps: float | None, norm: str) -> Tensor:
    """Project `adv` into the `norm`-ball of radius eps around `images`, then into [0, 1]."""
    if eps is not None:
        delta = adv - images
        if norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            n = flat_norm(delta, "l2")
            factor = torch.where(n > eps, eps / (n + 1e-12), torch.ones_like(n))
            delta = delta * _expand(factor, delta)
        adv = images + delta
    return adv.clamp(0.0, 1.0)


def margin(logits: Tensor, labels: Tensor) -> Tensor:
    """`max_{j != y} z_j - z_y` per example; correct for any logits, including all negative.

    The competitor is found by masking the true class with -inf, never by multiplying with a
    one-hot mask (which silently picks 0 when every other logit is negative).
    """
    true = logits.gather(1, labels[:, None]).squeeze(1)
    mask = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    other = logits.masked_fill(mask, float("-inf")).amax(dim=1)
    return other - true


def random_in_ball(
    images: Tensor, eps: float, norm: str, generator: torch.Generator | None
) -> Tensor:
    """A uniform random start in the Linf ball, or uniform-radius random direction in the L2 ball."""
    if norm == "linf":
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        delta = (noise * 2 - 1) * eps
    else:
        direction = torch.randn(images.shape, generator=generator, device=images.device)
        direction = direction / _expand(flat_norm(direction, "l2") + 1e-12, direction)
        radius = torch.rand(images.shape[0], generator=generator, device=images.device)
        delta = direction * _expand(radius * eps, direction)
    return (images + delta).clamp(0.0, 1.0)


class Attack(abc.ABC):
    """Base class. Subclasses implement `perturb` on a frozen model; `__call__` does the rest.

    `seed` makes every call deterministic; pass `generator=` to a call to draw from a running
    stream instead (the trainer does, so each batch gets a fresh random start).
    """

    name = "attack"
    white_box = True

    def __init__(
        self,
        *,
        eps: float | None,
        norm: str = "linf",
        seed: int = 0,
        eval_mode: bool = True,
        fp32: bool = True,
    ) -> None:
        check_eps(eps, norm)
        self.eps = eps
        self.norm = norm
        self.seed = int(seed)
        self.eval_mode = eval_mode
        self.fp32 = fp32

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({fields})"

    def config(self) -> dict[str, object]:
        """The settings that define this attack (JSON-friendly), for result files."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def bound(self) -> float:
        """The eps of a bounded attack (raises for an unbounded one)."""
        if self.eps is None:
            raise ValueError(f"{type(self).__name__} needs a finite eps")
        return float(self.eps)

    @abc.abstractmethod
    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        """Return adversarial images; the model is frozen and in the right mode."""

    def perturb_only(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        only: Tensor,
    ) -> Tensor:
        """`perturb` for the rows where `only` is True; the other rows need not be attacked.

        An attack that overrides this must return, on the rows of `only`, what `perturb` on the
        whole batch returns there, and draw the same numbers from `generator`; the default
        attacks the whole batch, which is always right."""
        return self.perturb(model, images, labels, generator)

    def __call__(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        *,
        generator: torch.Generator | None = None,
        only: Tensor | None = None,
    ) -> Tensor:
        """Adversarial versions of `images`, in the eps-ball and [0, 1].

        `only` (bool, one per image): the rows worth attacking. A caller that counts an image
        as robust only when it is also classified right clean passes the clean hits, and the
        attack may skip the rest (PGD does: its work shrinks to those rows, while the rows it
        attacks get exactly the random start and steps of a call on the whole batch). Rows
        outside `only` come back inside the ball but not necessarily attacked."""
        if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"expected images (N,C,H,W) and labels (N,), got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}"
            )
        if not images.is_floating_point():
            raise ValueError("images must be float tensors in [0, 1]; call .floats() on uint8 data")
        if images.shape[0] == 0:
            return images.detach().clone()
        images = images.detach()
        labels = labels.detach().long()
        if generator is None:
            generator = torch.Generator(device=images.device).manual_seed(self.seed)
        if self.fp32:
            images = images.float()
        device_type = images.device.type
        autocast = (
            torch.autocast(device_type=device_type, enabled=False)
            if self.fp32 and device_type in ("cpu", "cuda")
            else contextlib.nullcontext()
        )
        with (
            frozen_model(model, mode="eval" if self.eval_mode else "keep"),
            autocast,
            torch.enable_grad(),
        ):
            if only is None:
                adv = self.perturb(model, images, labels, generator)
            else:
                if only.shape != labels.shape or only.dtype != torch.bool:
                    raise ValueError(
                        f"only must be a bool mask of shape {tuple(labels.shape)}, got "
                        f"{only.dtype} {tuple(only.shape)}"
                    )
                adv = self.perturb_only(model, images, labels, generator, only.to(images.device))
        return project(adv.detach(), images, self.eps, self.norm)


def input_grad(
    loss: Tensor, x: Tensor, *, grad_outputs: Tensor | None = None, retain_graph: bool = False
) -> Tensor:
    """Gradient of a loss w.r.t. the input only.

    A path that never reads its input (an NB201 cell whose output node has no active edge) gives
    a loss without a graph; its input gradient is exactly zero, not an error.
    """
    if not loss.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(loss, x, grad_outputs=grad_outputs, retain_graph=retain_graph)
    return grad
