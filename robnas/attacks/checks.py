"""Gradient-masking checks (after Athalye et al. 2018, Croce & Hein 2020), reported, never hidden.

Each check returns a `Check` with the measured value and whether it is flagged; a flag means the
attack numbers may overstate robustness and the model needs a closer look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robnas.attacks.base import frozen_model, input_grad
from robnas.attacks.pgd import PGD


@dataclass(frozen=True)
class Check:
    name: str
    flagged: bool
    value: float
    threshold: float
    message: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def zero_gradients(model: nn.Module, images: Tensor, labels: Tensor) -> Check:
    """Fraction of examples whose cross-entropy input gradient is exactly zero."""
    with frozen_model(model), torch.enable_grad():
        x = images.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), labels, reduction="sum")
        grad = input_grad(loss, x)
    frac = float((grad.flatten(1).abs().sum(1) == 0).float().mean())
    return Check(
        "zero_gradients",
        frac > 0,
        frac,
        0.0,
        f"{frac:.1%} of examples have an all-zero input gradient; gradient attacks stall there",
    )


def nondeterministic_forward(model: nn.Module, images: Tensor, *, tol: float = 1e-4) -> Check:
    """Largest change of the L2-normalised logits between two identical forward passes."""
    with frozen_model(model), torch.no_grad():
        a, b = model(images), model(images)
    a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
    b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
    diff = float((a - b).norm(dim=1).max())
    return Check(
        "nondeterministic_forward",
        diff > tol,
        diff,
        tol,
        "the forward pass is randomised; evaluate with expectation over transformation",
    )


def softmax_outputs(model: nn.Module, images: Tensor, *, tol: float = 1e-5) -> Check:
    """Whether the model outputs probabilities (nonnegative rows summing to 1) instead of logits."""
    with frozen_model(model), torch.no_grad():
        out = model(images)
    row_err = float((out.sum(1) - 1).abs().max())
    flagged = bool(out.min() > -tol) and bool(out.max() < 1 + tol) and row_err < tol
    return Check(
        "softmax_outputs",
        flagged,
        row_err,
        tol,
        "the model outputs probabilities; attack the logits, softmax saturates gradients",
    )


def unbounded_attack(
    model: nn.Module, images: Tensor, labels: Tensor, *, seed: int = 0, min_success: float = 0.99
) -> Check:
    """PGD with eps = 1 (any image is reachable) must fool ~every correctly classified example."""
    with torch.no_grad(), frozen_model(model):
        correct = model(images).argmax(1) == labels
    x, y = images[correct], labels[correct]
    if x.shape[0] == 0:
        return Check("unbounded_attack", False, float("nan"), min_success, "no correct examples")
    adv = PGD(eps=1.0, alpha=0.1, steps=50, random_start=False, seed=seed)(model, x, y)
    with torch.no_grad(), frozen_model(model):
        success = float((model(adv).argmax(1) != y).float().mean())
    return Check(
        "unbounded_attack",
        success < min_success,
        success,
        min_success,
        f"an unbounded PGD (eps=1) fools only {success:.1%}; gradients are likely masked",
    )


def black_box_beats_white_box(
    fooled: Mapping[str, Tensor],
    white_box: Mapping[str, bool],
    n_correct: int,
    *,
    tol: float = 0.002,
) -> Check:
    """Share of initially-correct examples fooled by a black-box attack but by no white-box one.

    `fooled[name]` is a bool tensor over the same examples (True = this attack succeeded there).
    """
    black = [k for k, wb in white_box.items() if not wb and k in fooled]
    white = [k for k, wb in white_box.items() if wb and k in fooled]
    if not black or not white or n_correct == 0:
        return Check("black_box_beats_white_box", False, float("nan"), tol, "not applicable")
    by_black = torch.stack([fooled[k] for k in black]).any(0)
    by_white = torch.stack([fooled[k] for k in white]).any(0)
    share = float((by_black & ~by_white).sum()) / n_correct
    return Check(
        "black_box_beats_white_box",
        share > tol,
        share,
        tol,
        f"{share:.1%} of examples fall only to black-box attacks; white-box gradients mislead",
    )


def model_checks(model: nn.Module, images: Tensor, labels: Tensor, *, seed: int = 0) -> list[Check]:
    """The checks that need only the model and a batch (the suite adds black-box vs white-box)."""
    return [
        zero_gradients(model, images, labels),
        nondeterministic_forward(model, images),
        softmax_outputs(model, images),
        unbounded_attack(model, images, labels, seed=seed),
    ]
