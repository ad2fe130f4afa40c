"""Parameter (or FLOP) budgets: `5M`, `500K`, `1.5G`, `5e6`, `5000000`."""

from __future__ import annotations

import math
import re

from robnas.errors import BudgetError

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([kmg]?)\s*$", re.IGNORECASE)


def parse_budget(text: str | int | float) -> int:
    """A positive count from `5M`, `500K`, `1.5G`, `5e6` or `5000000`."""
    match = _PATTERN.match(str(text))
    if match is None:
        raise BudgetError(
            f"cannot read budget {text!r}: use a count like 5M, 500K, 1.5G, 5e6 or 5000000"
        )
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise BudgetError(f"budget {text!r} must be a positive count like 5M or 500K")
    return int(round(value))


def format_count(n: float) -> str:
    """5_000_000 -> '5.00M', for tables and messages."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(int(n))
