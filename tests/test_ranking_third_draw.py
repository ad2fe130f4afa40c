"""experiments/ranking_third_draw.py draws new cells; search_simulation_nb201.py keeps the best."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from data_helpers import DATA, needs
from experiment_helpers import load_experiment


@needs("nb201-robustness")
def test_the_third_draw_shares_no_class_with_the_earlier_ones(monkeypatch):
    script = load_experiment("ranking_third_draw", monkeypatch)
    from robnas.data.tabular import load_benchmark
    from robnas.genotype import Genotype
    from robnas.space.search_space import get_space

    bench = load_benchmark(DATA / "nb201-robustness")
    archs = script.draw_third(bench, 500, 3, list(script.EARLIER))
    space = get_space("nb201")

    def classes(strings):
        return {space.canonical(Genotype.from_str(f"nb201:{a}")) for a in strings}

    drawn = classes(archs)
    assert len(drawn) == 500  # 500 distinct isomorph classes
    for path in script.EARLIER:
        assert not drawn & classes(pd.read_csv(path)["arch"])
    assert archs == script.draw_third(bench, 500, 3, list(script.EARLIER))  # seeded


def test_shards_take_every_nth_cell_and_refuse_bad_text(monkeypatch):
    script = load_experiment("ranking_third_draw", monkeypatch)
    assert script.shard("1/3") == (1, 3)
    for bad in ("3/3", "a/2", "2"):
        with pytest.raises(argparse.ArgumentTypeError):
            script.shard(bad)


def test_the_simulated_search_keeps_what_each_ranker_prefers(monkeypatch):
    script = load_experiment("search_simulation_nb201", monkeypatch)
    rng = np.random.default_rng(0)
    n = 60
    pooled = rng.integers(0, 2, n).astype(float)  # min_pool_per_path
    params = rng.choice([100_000, 200_000, 300_000], n).astype(float)
    table = pd.DataFrame(
        {
            "params": params,
            "naswot": rng.normal(size=n),
            "paths_nopool": 1.0 - pooled,
            "min_pool_per_path": pooled,
            "free_paths": 0.0,
            "clean": params / 1e6,  # the largest cell is the most accurate
            "fgsm@1": pooled / 2,
            "pgd@1": pooled,  # pooled cells are the robust ones
        }
    )
    table.loc[0, "naswot"] = -np.inf  # a cell whose output ignores its input
    result = script.simulate(table, 10, 200, 0).set_index("ranker")
    robust = result.loc["`robust_score` (search objective)"]
    largest = result.loc["the largest cell (random among ties)"]
    oracle = result.loc["oracle random search (best pgd@1 of the k)"]
    assert robust["pgd@1"] == pytest.approx(oracle["pgd@1"])  # a pooled cell whenever one is drawn
    assert largest["clean"] == pytest.approx(
        result.loc["oracle random search (best clean of the k)"]["clean"]
    )
    assert robust["pgd@1"] > result.loc["a random cell"]["pgd@1"]
    default = result.loc["params+naswot (training-free)"]
    assert default["clean"] == pytest.approx(largest["clean"])  # the largest cell, by size first
    # among pooled cells robust_score's tie-break keeps the larger one
    assert robust["clean"] > result.loc["a random cell"]["clean"]


def test_the_simulation_reads_the_committed_development_tables(monkeypatch):
    # the tables moved into one folder per study once; the script kept reading the old paths
    script = load_experiment("search_simulation_nb201", monkeypatch)
    for name in ("first", "fresh"):
        table = script.development(name)
        assert len(table) == 500 and table["naswot"].notna().all()
        assert {"params", "min_pool_per_path", "free_paths", *script.TRUTHS} <= set(table.columns)
