"""experiments/oneshot_rank_nb201.py at a toy size: the committed columns, and resume (a rerun
neither retrains nor rescores what is done; an interrupted table scores only what is missing)."""

from __future__ import annotations

import pandas as pd
import pytest
from data_helpers import DATA, needs
from experiment_helpers import load_experiment
from scipy import stats

pytestmark = needs("nb201-robustness")


def _script(monkeypatch):
    return load_experiment("oneshot_rank_nb201", monkeypatch)


def test_toy_run_writes_the_columns_and_resumes(tmp_path, monkeypatch):
    script = _script(monkeypatch)
    argv = [
        "--data", str(DATA), "--train-images", "256", "--held", "64", "--images", "32",
        "--epochs", "1", "--archs", "10", "--lever-archs", "6", "--score-batch", "32",
        "--C", "4", "--levers", "base,recal_1x256,logp",
        "--work", str(tmp_path / "work"), "--out", str(tmp_path / "res"),
    ]  # fmt: skip
    assert script.main(argv) == 0
    table = pd.read_csv(tmp_path / "res.csv")
    assert {"arch", "clean", "fgsm@1", "params", "score", "true_clean", "true_pgd@1"} <= set(
        table.columns
    )
    assert len(table) == 10 and table["arch"].is_unique
    assert table["clean"].between(0, 1).all() and table["params"].gt(0).all()
    # score: params first, then the supernet within equal params (higher is better)
    by_params = table.sort_values("score")["params"].to_numpy()
    assert (by_params[1:] >= by_params[:-1]).all()
    lever = pd.read_csv(tmp_path / "work" / "recal_1x256" / "cells.csv")
    assert list(lever["arch"]) == list(table["arch"].iloc[:6])  # the same cells as the base
    md = (tmp_path / "res.md").read_text()
    assert "| recal_1x256 |" in md and "| base (lever cells) |" in md
    # the logp lever reports the supernet's mean log-probability, not its accuracy
    logp = pd.read_csv(tmp_path / "work" / "logp" / "cells.csv")
    assert logp["supernet_logp"].lt(0).all() and list(logp["arch"]) == list(lever["arch"])
    row = next(line for line in md.splitlines() if line.startswith("| logp |"))
    tau = stats.kendalltau(logp["supernet_logp"], logp["clean"])[0]
    assert row.split("|")[6].strip().startswith(f"{tau:.3f} /")
    (tmp_path / "res.md").write_text(md + "my conclusions\n")

    def refuse(*args, **kwargs):
        raise AssertionError("retrained a finished supernet")

    monkeypatch.setattr(script, "train", refuse)
    scored: list[int] = []
    import robnas.ranking.run as rank_run

    real = rank_run.score_cells

    def counting(supernet, genotypes, **kw):
        genotypes = list(genotypes)
        scored.append(len(genotypes))
        return real(supernet, genotypes, **kw)

    monkeypatch.setattr(rank_run, "score_cells", counting)
    assert script.main(argv) == 0  # everything done: nothing trains, nothing scores
    assert scored == []
    # an interrupted base table: only the missing cell is scored, nothing retrains
    cells = tmp_path / "work" / "base" / "cells.csv"
    pd.read_csv(cells).iloc[:-1][list(script.RAW)].to_csv(cells, index=False)
    (tmp_path / "work" / "base" / "timing.json").unlink()
    assert script.main([*argv, "--report-only"]) == 0  # reports the 9 cells done, scores none
    assert scored == [] and len(pd.read_csv(tmp_path / "res.csv")) == 9
    assert "9 of 10 cells (partial" in (tmp_path / "res.md").read_text()
    assert script.main(argv) == 0
    assert scored == [1]
    assert pd.read_csv(tmp_path / "res.csv")["arch"].tolist() == table["arch"].tolist()
    assert (tmp_path / "res.md").read_text().endswith("my conclusions\n")  # kept on rewrite


def test_test_retest_halves_hold_every_class():
    """Held-out splits come class by class: the halves interleave, so a cell right on exactly the
    first five classes scores alike on both halves (first/second halves would give 1.0 and 0.0)."""
    import numpy as np

    from robnas.genotype import Genotype
    from robnas.ranking.oneshot import CellScore
    from robnas.ranking.run import _row
    from robnas.space.search_space import get_space

    labels = np.repeat(np.arange(10), 10)  # class-ordered, as balanced subsets come
    g = Genotype.from_str(
        "nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|"
    )
    space = get_space("nb201")
    row = _row(CellScore(g, labels < 5, None), space, space.resolve_macro("tiny"), "cifar10")
    assert row["clean_half_a"] == row["clean_half_b"] == 0.5


def test_cells_from_another_result(tmp_path, monkeypatch):
    """--cells scores the cells another result drew (in its order), to replicate a ranker there."""
    script = _script(monkeypatch)
    archs = ["|a~0|+|b~0|b~1|", "|c~0|+|a~0|a~1|", "|b~0|+|c~0|c~1|"]
    path = tmp_path / "other.csv"
    pd.DataFrame({"arch": archs, "naswot": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    given = lambda cells, n: script.given_cells(script.argparse.Namespace(cells=cells, archs=n))  # noqa: E731
    assert given(path, 2) == archs[:2]
    assert given(None, 2) == []  # no --cells: the script draws
    with pytest.raises(SystemExit, match="has 3 cells; --archs asks 5"):
        given(path, 5)
