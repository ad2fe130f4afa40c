"""Parameter (or FLOP) budgets: `5M`, `500K`, `1.5G`, `5e6`, `5000000`.

The grammar lives with the other command-line values in `robnas.specs` (`parse_count`,
`Budget`); these names stay for the public API (`robnas.parse_budget`)."""

from __future__ import annotations

from robnas.specs import format_count
from robnas.specs import parse_count as parse_budget

__all__ = ["format_count", "parse_budget"]
