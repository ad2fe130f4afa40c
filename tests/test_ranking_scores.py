"""The declared rankers: cell-path signals counted by hand, and the scalars a search uses."""

from __future__ import annotations

import math

import pytest

from robnas.genotype import Genotype
from robnas.objectives.scores import (
    SCALES,
    cell_paths,
    path_features,
    robust_objective,
    robust_score,
    score,
)


def _cell(text: str):
    return Genotype.from_str(f"nb201:{text}").cells[0]


def test_paths_of_an_nb201_cell_counted_by_hand() -> None:
    # 0->1 pool; 0->2 conv1x1, 1->2 none; 0->3 skip, 1->3 skip, 2->3 conv3x3
    cell = _cell(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
    )
    paths = sorted(cell_paths(cell, 1, "last"))
    assert paths == sorted(
        [["skip_connect"], ["avg_pool_3x3", "skip_connect"], ["nor_conv_1x1", "nor_conv_3x3"]]
    )
    assert path_features(cell) == {
        "paths": 3.0,
        "paths_nopool": 2.0,  # the direct skip and the conv path
        "min_pool_per_path": 0.0,
        "free_paths": 2.0,  # the direct skip and pool->skip
    }


def test_a_smoothing_cell_and_a_disconnected_one() -> None:
    smooth = _cell("|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert path_features(smooth) == {
        "paths": 1.0,
        "paths_nopool": 0.0,
        "min_pool_per_path": 1.0,
        "free_paths": 0.0,
    }
    empty = _cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert path_features(empty) == dict.fromkeys(
        ("paths", "paths_nopool", "min_pool_per_path", "free_paths"), 0.0
    )


def test_an_edge_with_several_ops_starts_one_path_per_op() -> None:
    cell = ((frozenset({"skip_connect", "avg_pool_3x3"}),),)
    assert path_features(cell) == {
        "paths": 2.0,
        "paths_nopool": 1.0,
        "min_pool_per_path": 0.0,
        "free_paths": 2.0,
    }
    # two inputs, concat output: each intermediate node ends paths from both inputs
    two = ((frozenset({"sep_conv_3x3"}), frozenset({"max_pool_3x3"})),)
    assert path_features(two, inputs=2, output="concat")["paths"] == 2.0


def test_score_orders_by_size_first_then_the_formula() -> None:
    small_good = score(100_000, naswot=2000.0, paths_nopool=4)
    big_bad = score(100_001, naswot=0.0, paths_nopool=0)
    assert big_bad > small_good
    assert score(5, 10.0, 1) > score(5, 9.0, 1) and score(5, 10.0, 2) > score(5, 10.0, 1)
    assert 5 < score(5, -1e9, 0) < score(5, 1e9, 4) < 6
    within = 10.0 / SCALES["naswot"] + 1 / SCALES["paths_nopool"]
    assert score(5, 10.0, 1) == pytest.approx(5.5 + math.atan(within) / math.pi)


def test_robust_score_and_its_objective() -> None:
    assert robust_score(1, 0) == pytest.approx(1 / 0.2818)
    assert robust_score(0, 2) == pytest.approx(-2 / 0.6191)
    assert robust_score(1, 0) > robust_score(0, 0) > robust_score(0, 1)
    # the objective breaks ties towards the larger cell, never reorders distinct scores:
    # the smallest step between NB201 scores (1 pooled path against 2 free ones) beats any size
    assert robust_objective(1, 0, 600_000) > robust_objective(1, 0, 100_000)
    steps = {
        abs(robust_score(a, b) - robust_score(c, d))
        for a in range(4) for b in range(5) for c in range(4) for d in range(5)
    }  # fmt: skip
    smallest = min(s for s in steps if s > 1e-12)
    assert smallest == pytest.approx(0.318, abs=1e-3)
    assert robust_objective(1, 2, 0) > robust_objective(0, 0, 10**12)  # 0.318 against < 0.1
    assert 0 < robust_objective(0, 0, 10**12) < 0.1
