"""robnas/ranking/forest.py (`robust_forest`) and experiments/ranking_fourth_draw.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_helpers import DATA, needs
from experiment_helpers import load_experiment

from robnas.genotype import Genotype
from robnas.ranking.forest import RobustForest, robust_target
from robnas.ranking.metrics import kendall
from robnas.space.search_space import get_space


def _cells(count: int, seed: int) -> list[Genotype]:
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(count)]


def _pools(g: Genotype) -> float:
    return float(sum("pool" in op for node in g.cells[0] for ops in node for op in ops))


def test_the_forest_learns_a_graph_property_and_ranks_unseen_cells_by_it():
    space = get_space("nb201")
    train, test = _cells(300, 0), _cells(200, 1)
    # robustness made of pooling ops, which the cell's graph features count
    truths = {key: [_pools(g) for g in train] for key in ("fgsm@1", "pgd@1")}
    forest = RobustForest(space, space.resolve_macro("paper")).fit(train, truths)
    predicted = forest.predict(test)
    assert kendall(predicted, [_pools(g) for g in test]) > 0.8
    again = RobustForest(space, space.resolve_macro("paper")).fit(train, truths).predict(test)
    np.testing.assert_array_equal(predicted, again)  # seeded, one job: the same trees


def test_the_target_weighs_each_attack_equally_and_refuses_a_constant():
    target = robust_target({"fgsm@1": [0.1, 0.2, 0.3], "pgd@1": [30.0, 10.0, 20.0]})
    # each truth standardised: the scale of pgd@1's numbers does not dominate
    assert target == pytest.approx([0.0, -1.2247, 1.2247], abs=1e-4)
    with pytest.raises(ValueError, match="vary"):
        robust_target({"fgsm@1": [0.5, 0.5], "pgd@1": [0.1, 0.2]})


def test_predicting_before_fitting_says_so():
    space = get_space("nb201")
    with pytest.raises(RuntimeError, match="fit it"):
        RobustForest(space, space.resolve_macro("paper")).predict(_cells(2, 0))


@needs("nb201-robustness")
def test_the_fourth_draw_shares_no_class_with_the_training_cells(monkeypatch):
    script = load_experiment("ranking_fourth_draw", monkeypatch)
    from robnas.data.tabular import load_benchmark
    from robnas.ranking.report import draw_disjoint_classes

    bench = load_benchmark(DATA / "nb201-robustness")
    space = get_space("nb201")
    training = [a for path in script.TRAINING for a in pd.read_csv(path)["arch"]]
    archs = draw_disjoint_classes(bench, space, 500, 4, training)

    def classes(strings):
        return {space.canonical(Genotype.from_str(f"nb201:{a}")) for a in strings}

    assert len(classes(archs)) == 500
    assert not classes(archs) & classes(training)
    assert len(classes(training)) == 1500  # the three earlier draws are themselves disjoint
    with pytest.raises(ValueError, match="outside the earlier draws"):
        draw_disjoint_classes(bench, space, bench.num_unique - 1000, 4, training)
