"""experiments/lowfi_fidelity.py: development cells only, in budget; agreement within sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from experiment_helpers import load_experiment


def test_cells_come_from_the_development_draws_and_fit_the_budget(monkeypatch):
    script = load_experiment("lowfi_fidelity", monkeypatch)
    cells = script.development_cells(100, 600_000, 0)
    assert len(cells) == 100 == cells["arch"].nunique()
    assert (cells["params"] <= 600_000).all()
    dev = set()
    for path in script.DRAWS:
        dev |= set(pd.read_csv(path, usecols=["arch"])["arch"])
    assert set(cells["arch"]) <= dev
    assert cells.equals(script.development_cells(100, 600_000, 0))  # seeded
    with pytest.raises(SystemExit, match="in-budget"):
        script.development_cells(100, 50_000, 0)


def test_agreement_is_within_equal_params(monkeypatch):
    script = load_experiment("lowfi_fidelity", monkeypatch)
    # within each size clean_acc orders the truth exactly; across sizes it runs backwards
    rows = pd.DataFrame(
        {
            "arch": list("abcd"),
            "params": [1, 1, 2, 2],
            **{m: [0.8, 0.9, 0.1, 0.2] for m in script.METRICS},
        }
    )
    truth = pd.DataFrame(
        {t: [0.1, 0.2, 0.8, 0.9] for t in script.TRUTHS}, index=pd.Index(list("abcd"), name="arch")
    )
    agree = script.agreement(rows, truth).set_index(["signal", "truth"])
    assert agree.loc[("clean_acc", "clean"), "tau_within"] == pytest.approx(1.0)
    assert agree.loc[("clean_acc", "clean"), "tau"] < 0
    assert agree.loc[("#params", "clean"), "tau"] > 0
    assert np.isnan(agree.loc[("#params", "clean"), "tau_within"])
