"""experiments/combine_nb201.py on a synthetic table whose answers are known, and
experiments/indicators_nb201.py --archs-from on three real cells."""

from __future__ import annotations

import sys
from functools import partial

import numpy as np
import pandas as pd
import pytest
from data_helpers import DATA, needs
from experiment_helpers import load_experiment


def _script(name, monkeypatch):
    module = load_experiment(name, monkeypatch)
    if hasattr(module, "tau_gain"):
        # the bootstrap's 2,000 resamples only set the printed intervals, which no test reads;
        # 50 keep these tests seconds long
        monkeypatch.setattr(module, "tau_gain", partial(module.tau_gain, n_boot=50))
    return module


def _tables(tmp_path):
    """Three parameter groups of four cells. The truth rises with params and inside a group;
    the supernet orders every group rightly, jac_norm (lower = better) exactly backwards."""
    params = np.repeat([100, 200, 300], 4)
    inside = np.tile(np.arange(4), 3)
    truth = params / 100 + inside / 10
    cells = pd.DataFrame(
        {
            "arch": [f"a{i}" for i in range(12)],
            "params": params,
            "supernet_clean": 0.5 + inside / 100 - params / 1e4,  # useless across groups
            "clean": truth,
            "fgsm@1": truth,
            "pgd@1": truth,
        }
    )
    found = pd.DataFrame(
        {"arch": cells["arch"], "jac_norm": inside + 0.0, "hessian_eig": 1.0 - inside / 10}
    )
    found["params"] = params
    cells.to_csv(tmp_path / "cells.csv", index=False)
    found.to_csv(tmp_path / "ind.csv", index=False)


def test_combined_rankers_reach_the_known_taus(tmp_path, monkeypatch):
    script = _script("combine_nb201", monkeypatch)
    _tables(tmp_path)
    argv = ["--cells", str(tmp_path / "cells.csv"), "--indicators", str(tmp_path / "ind.csv")]
    assert script.main([*argv, "--out", str(tmp_path / "res")]) == 0
    scored = pd.read_csv(tmp_path / "res.csv")
    from robnas.ranking.metrics import kendall, kendall_within

    truth, groups = scored["clean"], scored["params"].tolist()
    assert kendall_within(scored["params+supernet"], truth, groups)[0] == pytest.approx(1.0)
    assert kendall(scored["params+supernet"], truth) == pytest.approx(1.0)
    assert kendall_within(scored["params+-jac_norm"], truth, groups)[0] == pytest.approx(-1.0)
    # -hessian_eig orders the groups as the supernet does: their mean keeps that order
    assert kendall_within(scored["params+(supernet,-hessian_eig)"], truth, groups)[0] == (
        pytest.approx(1.0)
    )
    assert kendall(scored["supernet"], truth) < 0  # the supernet alone ranks across sizes badly
    report = (tmp_path / "res.md").read_text()
    assert "| params+supernet | clean | 1.000 |" in report
    # gain over #params: a perfect order minus params' tau-b with its ties, 48 / sqrt(48 * 66)
    gain = 1 - 48 / np.sqrt(48 * 66)
    assert f"| params+supernet | {gain:+.3f} (" in report


def test_refuses_indicators_for_only_some_cells(tmp_path, monkeypatch, capsys):
    script = _script("combine_nb201", monkeypatch)
    _tables(tmp_path)
    part = pd.read_csv(tmp_path / "ind.csv").head(5)
    part.to_csv(tmp_path / "part.csv", index=False)
    argv = ["--cells", str(tmp_path / "cells.csv"), "--indicators", str(tmp_path / "part.csv")]
    assert script.main([*argv, "--out", str(tmp_path / "res")]) == 2
    assert "5 of the 12 cells" in capsys.readouterr().err
    assert not list(tmp_path.glob("res*"))


@needs("nb201-robustness", "cifar10")
def test_indicators_score_the_cells_of_another_result(tmp_path, monkeypatch):
    script = _script("indicators_nb201", monkeypatch)
    archs = [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    ]
    pd.DataFrame({"arch": archs, "other": [1, 2, 3]}).to_csv(tmp_path / "from.csv", index=False)
    argv = [
        "indicators_nb201.py", "--data", str(DATA), "--images", "8", "--C", "4",
        "--indicators", "jac_norm", "--archs-from", str(tmp_path / "from.csv"),
        "--out", str(tmp_path / "ind"),
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    assert script.main() == 0
    table = pd.read_csv(tmp_path / "ind.csv")
    assert table.columns.tolist() == ["arch", "jac_norm", "params", "seconds"]
    assert table["arch"].tolist() == archs and (table["jac_norm"] > 0).all()
    assert (table["seconds"] > 0).all()  # what a search computing them would be charged
    report = (tmp_path / "ind.md").read_text()
    assert "The 3 cells of from.csv" in report and "| params+-jac_norm | " in report
    # a rerun adding an indicator computes only it and keeps the values already there
    argv[argv.index("jac_norm")] = "jac_norm,hessian_eig"
    monkeypatch.setattr(sys, "argv", [*argv, "--iterations", "2"])
    assert script.main() == 0
    again = pd.read_csv(tmp_path / "ind.csv")
    assert again.columns.tolist() == ["arch", "jac_norm", "hessian_eig", "params", "seconds"]
    assert again["jac_norm"].tolist() == table["jac_norm"].tolist()
    assert (again["seconds"] > table["seconds"]).all()  # the added indicator's time added
    assert again["hessian_eig"].notna().all()


def test_indicator_tables_merge_and_higher_is_better_ones_keep_their_sign(tmp_path, monkeypatch):
    script = _script("combine_nb201", monkeypatch)
    _tables(tmp_path)
    cells = pd.read_csv(tmp_path / "cells.csv")
    inside = np.tile(np.arange(4), 3)
    # naswot and zico are registered higher-is-better: rising with the truth inside a group;
    # the table may be a `robnas rank` one, whose other columns are not taken
    pd.DataFrame(
        {"arch": cells["arch"], "naswot": inside * 2.0, "zico": -inside * 1.0, "params": 0}
        | {"supernet_clean": 0.0, "clean": 0.0}
    ).to_csv(tmp_path / "zc.csv", index=False)
    argv = ["--cells", str(tmp_path / "cells.csv"), "--out", str(tmp_path / "res")]
    argv += ["--indicators", str(tmp_path / "ind.csv"), str(tmp_path / "zc.csv")]
    assert script.main(argv) == 0
    scored = pd.read_csv(tmp_path / "res.csv")
    from robnas.ranking.metrics import kendall_within

    truth, groups = scored["clean"], scored["params"].tolist()
    assert kendall_within(scored["params+naswot"], truth, groups)[0] == pytest.approx(1.0)
    assert kendall_within(scored["params+zico"], truth, groups)[0] == pytest.approx(-1.0)
    assert kendall_within(scored["params+supernet"], truth, groups)[0] == pytest.approx(1.0)
    assert "params+-jac_norm" in scored and "params+(supernet,naswot)" in scored
    # the triple: -jac_norm (backwards here) cancels naswot's ranks, the supernet's order stays
    triple = scored["params+(supernet,naswot,-jac_norm)"]
    assert kendall_within(triple, truth, groups)[0] == pytest.approx(1.0)
    assert "params+(supernet,naswot,-hessian_eig)" not in scored  # only the declared triple


def test_a_committed_results_table_gives_what_its_cells_csv_gives(tmp_path, monkeypatch):
    """experiments/results/oneshot_rank_nb201/*.csv names the supernet's accuracy `clean` and the
    dataset's `true_clean`: read as such, it scores exactly as the run's cells.csv does."""
    script = _script("combine_nb201", monkeypatch)
    _tables(tmp_path)
    cells = pd.read_csv(tmp_path / "cells.csv")
    committed = cells.rename(
        columns={"clean": "true_clean", "fgsm@1": "true_fgsm@1", "pgd@1": "true_pgd@1"}
    ).rename(columns={"supernet_clean": "clean"})
    committed.to_csv(tmp_path / "committed.csv", index=False)
    for name in ("cells", "committed"):
        argv = ["--cells", str(tmp_path / f"{name}.csv"), "--indicators", str(tmp_path / "ind.csv")]
        assert script.main([*argv, "--out", str(tmp_path / f"res_{name}")]) == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "res_cells.csv"), pd.read_csv(tmp_path / "res_committed.csv")
    )
    assert pd.read_csv(tmp_path / "res_committed.csv")["clean"].tolist() == cells["clean"].tolist()


def test_a_robnas_rank_table_brings_its_own_naswot(tmp_path, monkeypatch):
    """`robnas rank` tables hold naswot already: used as it is without --indicators, replaced by
    an indicator table's column when one is given (a merge keeping both lost it silently)."""
    script = _script("combine_nb201", monkeypatch)
    _tables(tmp_path)
    cells = pd.read_csv(tmp_path / "cells.csv")
    inside = np.tile(np.arange(4), 3)
    cells.assign(naswot=inside * 1.0).to_csv(tmp_path / "rank.csv", index=False)
    pd.DataFrame({"arch": cells["arch"], "naswot": -inside * 1.0}).to_csv(
        tmp_path / "nw.csv", index=False
    )
    from robnas.ranking.metrics import kendall_within

    groups = cells["params"].tolist()
    for given, expected in (([], 1.0), (["--indicators", str(tmp_path / "nw.csv")], -1.0)):
        argv = ["--cells", str(tmp_path / "rank.csv"), *given, "--out", str(tmp_path / "res")]
        assert script.main(argv) == 0
        scored = pd.read_csv(tmp_path / "res.csv")
        tau = kendall_within(scored["params+naswot"], scored["clean"], groups)[0]
        assert tau == pytest.approx(expected)


@needs("nb201-robustness")
def test_a_fresh_draw_excludes_the_classes_of_another_result(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from robnas.data.tabular import load_benchmark
    from robnas.space.search_space import get_space

    script = _script("indicators_nb201", monkeypatch)
    bench = load_benchmark(DATA / "nb201-robustness")
    first = script.draw_fresh(bench, SimpleNamespace(archs=300, seed=0, exclude=None))
    pd.DataFrame({"arch": first}).to_csv(tmp_path / "first.csv", index=False)
    fresh = script.draw_fresh(
        bench, SimpleNamespace(archs=300, seed=0, exclude=tmp_path / "first.csv")
    )
    space = get_space("nb201")

    def classes(archs):
        return {space.canonical(script.Genotype.from_str(f"nb201:{a}")) for a in archs}

    assert len(fresh) == 300 and len(classes(fresh)) == 300
    assert not classes(fresh) & classes(first)
