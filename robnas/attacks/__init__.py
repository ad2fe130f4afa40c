"""Adversarial attacks, configured once and called as `attack(model, images, labels)`.

`ATTACKS` maps registry names to factories `factory(eps=..., eps_l2=..., seed=..., **overrides)`:
Linf attacks use `eps`, L2 attacks use `eps_l2`; overrides set any constructor argument (e.g.
`steps=5`). `make_attack("pgd20", eps=DEFAULT_EPS)` builds one; budgets are read and written by
`robnas.specs.Eps` (`parse_eps` and `format_eps` here are its float forms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robnas.attacks.autoattack import APGDCE, AutoAttack, Square
from robnas.attacks.base import Attack, frozen_model, margin, project
from robnas.attacks.cw import CW
from robnas.attacks.deepfool import DeepFool
from robnas.attacks.fgsm import FGSM
from robnas.attacks.mifgsm import MIFGSM
from robnas.attacks.pgd import PGD
from robnas.registry import Registry
from robnas.specs import DEFAULT_EPS, format_eps, parse_eps

AttackFactory = Callable[..., Attack]
ATTACKS: Registry[AttackFactory] = Registry("attack")

DEFAULT_EPS_L2 = 0.5


def _bounded(cls: Callable[..., Attack], l2: bool, defaults: dict[str, Any]) -> AttackFactory:
    """A factory that bounds `cls` by `eps` (L-inf) or `eps_l2`; a callable default is a
    function of that bound (e.g. alpha = eps / 4)."""

    def factory(
        eps: float = DEFAULT_EPS, eps_l2: float = DEFAULT_EPS_L2, seed: int = 0, **kw: Any
    ) -> Attack:
        bound = eps_l2 if l2 else eps
        args = {k: (v(bound) if callable(v) else v) for k, v in defaults.items()}
        return cls(eps=bound, seed=seed, **{**args, **kw})

    return factory


def _linf(cls: Callable[..., Attack], **defaults: Any) -> AttackFactory:
    return _bounded(cls, False, defaults)


def _l2(cls: Callable[..., Attack], **defaults: Any) -> AttackFactory:
    return _bounded(cls, True, defaults)


def _quarter(e: float) -> float:
    # RobNet's PGD step: 2/255 for eps 8/255, i.e. eps / 4.
    return e / 4


ATTACKS.add("fgsm", _linf(FGSM))
ATTACKS.add("pgd", _linf(PGD))  # configurable: steps, alpha, norm, restarts, loss, random_start
ATTACKS.add("pgd7", _linf(PGD, steps=7, alpha=_quarter))
ATTACKS.add("pgd20", _linf(PGD, steps=20, alpha=_quarter))
ATTACKS.add("pgd100", _linf(PGD, steps=100, alpha=_quarter))
ATTACKS.add("pgd_cw", _linf(PGD, steps=30, alpha=_quarter, loss="cw"))
ATTACKS.add("pgd_l2", _l2(PGD, steps=20, alpha=_quarter, norm="l2"))
ATTACKS.add("mifgsm", _linf(MIFGSM))
ATTACKS.add("deepfool", _l2(DeepFool, norm="l2"))
ATTACKS.add("deepfool_linf", _linf(DeepFool, norm="linf"))
ATTACKS.add("cw", _l2(CW))
ATTACKS.add("apgd_ce", _linf(APGDCE))
ATTACKS.add("square", _linf(Square))
ATTACKS.add("aa", _linf(AutoAttack))


def make_attack(
    name: str, *, eps: float = DEFAULT_EPS, eps_l2: float = DEFAULT_EPS_L2, seed: int = 0, **kw: Any
) -> Attack:
    """Build the registered attack `name` (UnknownName lists the known ones)."""
    return ATTACKS.get(name)(eps=eps, eps_l2=eps_l2, seed=seed, **kw)


__all__ = [
    "APGDCE",
    "ATTACKS",
    "CW",
    "DEFAULT_EPS",
    "FGSM",
    "MIFGSM",
    "PGD",
    "Attack",
    "AttackFactory",
    "AutoAttack",
    "DeepFool",
    "Square",
    "format_eps",
    "frozen_model",
    "make_attack",
    "margin",
    "parse_eps",
    "project",
]
