"""experiments/supernet_seeds_nb201.py on synthetic supernets whose answers are known: the taus
it prints, the declared rule both ways, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from experiment_helpers import load_experiment


@pytest.fixture
def script(monkeypatch):
    return load_experiment("supernet_seeds_nb201", monkeypatch)


def _cells(tmp_path, supernets: dict[str, np.ndarray], naswot: np.ndarray) -> list[str]:
    """Four parameter groups of six cells; the truth rises with params and inside a group (by
    `inside`). One table per supernet (the committed format for the first, robnas rank's for the
    rest), and the naswot table."""
    params = np.repeat([100, 200, 300, 400], 6)
    truth = params / 100 + INSIDE / 10
    arch = [f"a{i}" for i in range(len(params))]
    argv = []
    for i, (label, acc) in enumerate(supernets.items()):
        if i == 0:
            table = {"arch": arch, "clean": acc, "fgsm@1": acc, "params": params}
            table |= {"true_clean": truth, "true_fgsm@1": truth, "true_pgd@1": truth}
        else:
            table = {"arch": arch, "params": params, "supernet_clean": acc}
            table |= {"clean": truth, "fgsm@1": truth, "pgd@1": truth}
        pd.DataFrame(table).to_csv(tmp_path / f"{label}.csv", index=False)
        argv += ["--supernet", f"{label}={tmp_path / f'{label}.csv'}"]
    pd.DataFrame({"arch": arch, "naswot": naswot}).to_csv(tmp_path / "naswot.csv", index=False)
    return [*argv, "--naswot", str(tmp_path / "naswot.csv"), "--n-boot", "20"]


INSIDE = np.tile(np.arange(6), 4)
SHUFFLED = np.tile([3, 0, 5, 1, 4, 2], 4)  # unrelated to INSIDE within each group


def test_supernets_that_rank_keep_the_default(tmp_path, script):
    right = np.repeat([1, 2, 3, 4], 6) / 10 + INSIDE / 100  # orders every cell rightly
    argv = _cells(tmp_path, {"s0": right, "s1": right + 0.001}, naswot=SHUFFLED + 0.0)
    assert script.main([*argv, "--out", str(tmp_path / "res")]) == 0
    text = (tmp_path / "res.md").read_text()
    assert "| s0 | 1.000 / 1.000 | 1.000 / 1.000 | 1.000 / 1.000 |" in text
    assert "| s0 | s1 | 1.000 | 1.000 |" in text
    assert "so the rule keeps params+(supernet,naswot)" in text
    table, labels = script.load(
        {"s0": tmp_path / "s0.csv", "s1": tmp_path / "s1.csv"}, tmp_path / "naswot.csv"
    )
    assert labels == ["s0", "s1"] and len(table) == 24
    _, keep = script.report(table, labels, "cmd", n_boot=20)
    assert keep


def test_supernets_that_rank_backwards_lose_to_naswot(tmp_path, script):
    wrong = 0.5 - INSIDE / 100  # every group backwards
    argv = _cells(tmp_path, {"s0": wrong, "s1": wrong}, naswot=INSIDE + 0.0)
    assert script.main([*argv, "--out", str(tmp_path / "res")]) == 0
    text = (tmp_path / "res.md").read_text()
    assert "| s0 | " in text and "/ -1.000 |" in text.split("| s0 | ")[1].split("\n")[0]
    assert "so the rule makes params+naswot the default instead" in text
    # params+naswot orders every cell: tau 1 overall and within
    assert "| (no supernet) params+naswot | - | - | - | 1.000 / 1.000 |" in text


def test_tables_of_other_cells_are_refused(tmp_path, script):
    argv = _cells(tmp_path, {"s0": INSIDE + 0.0, "s1": INSIDE + 0.0}, naswot=INSIDE + 0.0)
    pd.read_csv(tmp_path / "s1.csv").iloc[:-1].to_csv(tmp_path / "s1.csv", index=False)
    with pytest.raises(SystemExit, match="score the same cells"):
        script.main([*argv, "--out", str(tmp_path / "res")])
    assert not (tmp_path / "res.md").exists()


def test_one_supernet_is_refused(tmp_path, script, capsys):
    argv = _cells(tmp_path, {"s0": INSIDE + 0.0}, naswot=INSIDE + 0.0)
    with pytest.raises(SystemExit):
        script.main([*argv, "--out", str(tmp_path / "res")])
    assert "at least two --supernet" in capsys.readouterr().err
