"""Markdown building blocks and the verdict rule (analysis/markdown.py)."""

from __future__ import annotations

import math

from robnas.analysis.markdown import ci, md_table, short_verdict, verdict
from robnas.analysis.stats import Correlation


def _corr(coef: float, low: float, high: float, p: float, method: str = "kendall") -> Correlation:
    return Correlation(method=method, coef=coef, low=low, high=high, p=p, n=40)


def test_md_table_escapes_pipes_in_cells() -> None:
    lines = md_table(["a", "b"], [["x|y", 1]])
    assert lines == ["| a | b |", "|---|---|", "| x\\|y | 1 |", ""]


def test_ci_text() -> None:
    assert ci(-0.1234, 0.5) == "[-0.123, +0.500]"
    assert ci(math.nan, 1.0) == "n/a"


def test_verdict_needs_interval_and_p_and_the_expected_sign() -> None:
    supported = verdict({"kendall": _corr(0.4, 0.2, 0.6, 0.001)}, "denser is more robust", +1)
    assert short_verdict(supported) == "Supported"
    weak = verdict({"kendall": _corr(0.1, -0.1, 0.3, 0.2)}, "denser is more robust", +1)
    assert short_verdict(weak) == "Not supported by this study"
    opposite = verdict({"kendall": _corr(-0.4, -0.6, -0.2, 0.001)}, "denser is more robust", +1)
    assert short_verdict(opposite) == "Contradicted by this study"
    partly = verdict(
        {"kendall": _corr(0.4, 0.2, 0.6, 0.001), "pearson": _corr(0.1, -0.1, 0.3, 0.2, "pearson")},
        "denser is more robust",
        +1,
    )
    assert short_verdict(partly) == "Partly supported (1 of 2 coefficients)"
