"""Budget references of the NB201 robustness dataset: exact order statistics, the issue's figures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from data_helpers import DATA, needs

from robnas.analysis.references import budget_references, expected_max_of_sample
from robnas.data.tabular import load_benchmark


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_expected_max_matches_enumeration(k: int) -> None:
    values = np.array([0.3, 0.1, 0.7, 0.7, 0.2])
    subsets = list(itertools.combinations(values, k))
    brute = float(np.mean([max(s) for s in subsets]))
    assert expected_max_of_sample(values, k) == pytest.approx(brute, abs=1e-12)


def test_expected_max_of_all_is_the_maximum_and_of_one_the_mean() -> None:
    values = np.random.default_rng(0).random(50)
    assert expected_max_of_sample(values, 50) == pytest.approx(values.max())
    assert expected_max_of_sample(values, 1) == pytest.approx(values.mean())
    with pytest.raises(ValueError, match="k must lie"):
        expected_max_of_sample(values, 51)


@needs("nb201-robustness")
def test_references_at_0_6m_match_the_dataset() -> None:
    # The NB201 budget of 0.6M at C=16 N=5 keeps 4,787 classes; the largest size holds 796.
    refs = budget_references(load_benchmark(DATA / "nb201-robustness"), 600_000)
    assert refs.classes == 4787 and refs.largest_ties() == 796
    assert refs.optimum("clean") == pytest.approx(0.941)
    assert refs.optimum("fgsm@1") == pytest.approx(0.654)
    assert refs.optimum("pgd@1") == pytest.approx(0.588)
    largest, random = refs.largest_rule(), refs.random_cell()
    assert largest["fgsm@1"] == pytest.approx(0.529, abs=5e-4)
    assert largest["pgd@1"] == pytest.approx(0.347, abs=5e-4)
    assert random["fgsm@1"] == pytest.approx(0.461, abs=5e-4)
    # oracle random search lies between a random cell and the optimum, rising with k
    ten, hundred = refs.oracle_random("fgsm@1", 10), refs.oracle_random("fgsm@1", 100)
    assert random["fgsm@1"] < ten < hundred < refs.optimum("fgsm@1")
    assert ten == pytest.approx(0.570, abs=3e-3)
    assert refs.percentile("fgsm@1", refs.optimum("fgsm@1")) == 1.0
