"""The declared objectives of the network-mode protocols: one shape, within-size formulas."""

from __future__ import annotations

import math

import pytest

from robnas.errors import ConfigError, UnknownName
from robnas.objectives.protocols import (
    FORMULAS,
    PROTOCOLS,
    TARGETS,
    definition,
    objective,
    within_size,
)
from robnas.objectives.scores import score

SMOOTH = {"naswot": 1500.0, "paths_nopool": 0.0, "min_pool_per_path": 1.0, "free_paths": 0.0}
ROUGH = {"naswot": 1500.0, "paths_nopool": 4.0, "min_pool_per_path": 0.0, "free_paths": 1.0}


def test_every_protocol_declares_every_target() -> None:
    assert set(FORMULAS) == {(p, t) for p in PROTOCOLS for t in TARGETS}
    for p in PROTOCOLS:
        for t in TARGETS:
            assert t in definition(p, t) and "parameter count first" in definition(p, t)


def test_the_ranker_clean_objective_is_the_declared_score() -> None:
    m = {**ROUGH, "naswot": 1562.7}
    assert objective("ranker", "clean", m, 587386) == pytest.approx(score(587386, 1562.7, 4.0))


def test_size_comes_first_whatever_the_formula() -> None:
    for p, extra in (("ranker", {}), ("lowfi", {}), ("supernet", {})):
        for t in TARGETS:
            measured = ("clean_acc", "fgsm_acc", "pgd_acc", "clean_margin", "fgsm_margin",
                        "pgd_margin")  # fmt: skip
            best = {**SMOOTH, **dict.fromkeys(measured, 0.9), **extra}
            worst = {**ROUGH, "naswot": 1.0, **dict.fromkeys(measured, 0.0)}
            assert objective(p, t, worst, 1001) > objective(p, t, best, 1000)
            assert objective(p, t, best, 1000) > objective(p, t, worst, 1000)


def test_pooling_counts_only_up_to_one_pool_per_path() -> None:
    # the all-pool chain (three pools on its one path) is worth no more than one pool per path:
    # the formula is not extrapolated past the range it was chosen on
    chain = {**SMOOTH, "min_pool_per_path": 3.0}
    for t in ("fgsm@1", "pgd@1"):
        assert within_size("ranker", t, chain) == within_size("ranker", t, SMOOTH)
        assert within_size("ranker", t, SMOOTH) > within_size("ranker", t, ROUGH)


def test_naswot_only_breaks_ties_for_pgd() -> None:
    low, high = {**SMOOTH, "naswot": 1000.0}, {**ROUGH, "naswot": 2000.0}
    assert within_size("ranker", "pgd@1", low) > within_size("ranker", "pgd@1", high)
    assert within_size("ranker", "pgd@1", {**SMOOTH, "naswot": 1001.0}) > within_size(
        "ranker", "pgd@1", low
    )


def test_measuring_protocols_read_their_measurement() -> None:
    m = {"clean_acc": 0.5, "fgsm_acc": 0.3, "pgd_acc": 0.2}
    m |= {"clean_margin": 1.5, "fgsm_margin": -0.5, "pgd_margin": -0.7}
    assert within_size("lowfi", "fgsm@1", m) == -0.5  # the low-fidelity margins
    assert within_size("lowfi", "pgd@1", m) == -0.7
    assert within_size("supernet", "pgd@1", m) == 0.2  # the supernet's accuracies
    assert math.isnan(objective("lowfi", "clean", {"clean_margin": math.nan}, 10))


def test_bad_names_and_missing_measurements_say_what_to_do() -> None:
    with pytest.raises(UnknownName, match="unknown protocol 'oracle'; known: lowfi, ranker"):
        objective("oracle", "clean", {}, 1)
    with pytest.raises(UnknownName, match="unknown objective 'pgd20_acc'"):
        objective("ranker", "pgd20_acc", {}, 1)
    with pytest.raises(ConfigError, match="needs the measurement 'naswot'"):
        objective("ranker", "fgsm@1", {"free_paths": 0.0, "min_pool_per_path": 0.0}, 1)


def test_the_declaration_evidence_scores_what_the_library_declares(monkeypatch) -> None:
    from experiment_helpers import load_experiment

    script = load_experiment("protocol_declaration_nb201", monkeypatch)
    dev = script.development_table().head(40)
    found = script.formulas(dev)
    for target in TARGETS:
        (name,) = [n for n in found if f"[declared: {target}]" in n]
        mine = [within_size("ranker", target, row) for row in dev.to_dict("records")]
        assert found[name] == pytest.approx(mine)
