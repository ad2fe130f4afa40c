"""Markdown building blocks of the report: tables, intervals, verdict sentences, a section.

Verdict rule everywhere: a finding is "supported" only when its 95% bootstrap interval excludes 0
and p < 0.05; otherwise the report says it is not supported by this study, with n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from robnas.analysis.stats import Correlation, format_p

__all__ = ["Section", "ci", "corr_rows", "md_table", "short_verdict", "verdict"]


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table as lines, followed by a blank line."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    # a pipe inside a cell (genotype strings) would split it: escape it as GitHub markdown wants
    out += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return [*out, ""]


def ci(low: float, high: float, digits: int = 3) -> str:
    """A 95% interval as `[+0.123, +0.456]`, or n/a when undefined."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def corr_rows(label: str, corrs: dict[str, Correlation]) -> list[list[object]]:
    """Table rows (variable, method, coefficient, CI, p, n), one per correlation method."""
    return [
        [label, c.method, f"{c.coef:+.3f}", ci(c.low, c.high), format_p(c.p), c.n]
        for c in corrs.values()
    ]


def verdict(corrs: dict[str, Correlation], claim: str, expected_sign: int) -> str:
    """A plain sentence on whether the correlations support `claim` (of sign `expected_sign`)."""
    tau = corrs.get("kendall") or next(iter(corrs.values()))
    defined = [c for c in corrs.values() if c.defined]
    if not defined:
        return f"**Cannot be tested here**: a variable is constant over the n={tau.n} trials."
    sig = [c for c in defined if c.significant]
    if not sig:
        return (
            f"**Not supported by this study**: {claim} — no coefficient has a 95% CI excluding 0 "
            f"with p < 0.05 ({tau.text()})."
        )
    signs = {int(np.sign(c.coef)) for c in sig}
    if len(signs) > 1:
        return f"**Inconclusive**: the significant coefficients disagree in sign ({tau.text()})."
    if signs.pop() != expected_sign:
        return f"**Contradicted by this study**: the opposite of '{claim}' holds ({tau.text()})."
    strength = (
        "Supported"
        if len(sig) == len(defined)
        else f"Partly supported ({len(sig)} of {len(defined)} coefficients)"
    )
    return f"**{strength}**: {claim} ({tau.text()})."


def short_verdict(verdict_text: str) -> str:
    """The bold part of a verdict (`Supported`, `Not supported by this study`, ...)."""
    return verdict_text.split("**")[1] if "**" in verdict_text else verdict_text


@dataclass
class Section:
    """One report section: its markdown lines, the files it adds (CSV, PNG) and a headline."""

    title: str
    lines: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    headline: str = ""

    def csv(self, name: str, frame: pd.DataFrame) -> None:
        self.files[name] = frame.to_csv(index=False, float_format="%.6g").encode()

    def png(self, name: str, payload: bytes, caption: str) -> None:
        self.files[name] = payload
        self.lines += [f"![{caption}]({name})", ""]
