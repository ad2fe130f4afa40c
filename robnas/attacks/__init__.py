"""Adversarial attacks, configured once and called as `attack(model, images, labels)`.

`ATTACKS` maps registry names to factories `factory(eps=..., eps_l2=..., seed=..., **overrides)`:
Linf attacks use `eps`, L2 attacks use `eps_l2`; overrides set any constructor argument (e.g.
`steps=5`). `make_attack("pgd20", eps=8/255)` builds one; `parse_eps("8/255")` reads budgets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from robnas.attacks.autoattack import APGDCE, AutoAttack, Square
from robnas.attacks.base import Attack, frozen_model, margin, project
from robnas.attacks.cw import CW
from robnas.attacks.deepfool import DeepFool
from robnas.attacks.fgsm import FGSM
from robnas.attacks.mifgsm import MIFGSM
from robnas.attacks.pgd import PGD
from robnas.errors import ConfigError
from robnas.registry import Registry

AttackFactory = Callable[..., Attack]
ATTACKS: Registry[AttackFactory] = Registry("attack")

DEFAULT_EPS = 8 / 255
DEFAULT_EPS_L2 = 0.5


def _linf(cls: Callable[..., Attack], **defaults: Any) -> AttackFactory:
    def factory(
        eps: float = DEFAULT_EPS, eps_l2: float = DEFAULT_EPS_L2, seed: int = 0, **kw: Any
    ) -> Attack:
        args = {k: (v(eps) if callable(v) else v) for k, v in defaults.items()}
        return cls(eps=eps, seed=seed, **{**args, **kw})

    return factory


def _l2(cls: Callable[..., Attack], **defaults: Any) -> AttackFactory:
    def factory(
        eps: float = DEFAULT_EPS, eps_l2: float = DEFAULT_EPS_L2, seed: int = 0, **kw: Any
    ) -> Attack:
        args = {k: (v(eps_l2) if callable(v) else v) for k, v in defaults.items()}
        return cls(eps=eps_l2, seed=seed, **{**args, **kw})

    return factory


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


_EPS_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([0-9]*\.?[0-9]+))?\s*$")


def parse_eps(text: str | float, *, allow_zero: bool = False) -> float:
    """Read a budget like "8/255", "0.03" or 0.03; must lie in (0, 1] (or [0, 1] with
    `allow_zero`, where 0 means no attack)."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _EPS_RE.match(text)
        if not match:
            raise ConfigError(f"cannot read eps {text!r}; write it like 8/255 or 0.03")
        num, den = match.groups()
        if den is not None and float(den) == 0:
            raise ConfigError(f"eps {text!r} divides by zero; write it like 8/255")
        value = float(num) / float(den) if den is not None else float(num)
    low = "[0" if allow_zero else "(0"
    above_low = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not above_low or value > 1:
        raise ConfigError(f"eps must lie in {low}, 1] (images are in [0, 1]), got {text!r}")
    return value


def format_eps(eps: float) -> str:
    """Write eps as a fraction of 255 when it is one ("8/255"), else as a short decimal."""
    frac = Fraction(eps * 255).limit_denominator(1000)
    if abs(float(frac) / 255 - eps) < 1e-9:
        if frac.denominator == 1:
            return f"{frac.numerator}/255"
        return f"{float(frac):g}/255"
    return f"{eps:g}"


__all__ = [
    "APGDCE",
    "ATTACKS",
    "CW",
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
