"""`robnas search --space wrn`: settings, refusals, both budgets at the deployed size, and one
tiny end-to-end search on real CIFAR-10 images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from search_helpers import as_old_config, search_settings

from robnas.cli import main
from robnas.errors import BudgetError, ConfigError, UnknownName
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.result import Result
from robnas.search.common import BudgetGate, build_strategy
from robnas.search.pipeline import run_search
from robnas.search.settings import MacroSettings, settings_from_json
from robnas.space.search_space import get_space


def test_settings_of_a_macro_search() -> None:
    s = search_settings(
        "--space", "wrn", "--budget", "20M", "--flops-budget", "5G", "--preset", "tiny"
    )
    assert isinstance(s, MacroSettings)
    assert s.mode == "macro" and s.budget == 20_000_000 and s.flops_budget == 5_000_000_000
    assert s.final_macro == get_space("wrn").resolve_macro()  # the deployed size
    assert s.search_macro == get_space("wrn").resolve_macro("tiny")  # the proxy
    assert s.objective == "pgd20_acc" and s.finetune is not None and s.train is not None
    assert s.finetune.epochs < s.train.epochs  # low fidelity, then more for the promising
    assert settings_from_json(s.to_json()) == s
    small = search_settings("--space", "wrn", "--size", "small", "--method", "clean")
    assert isinstance(small, MacroSettings)
    assert small.search_macro == get_space("wrn").resolve_macro("small")  # --size: the proxy
    assert small.train.method == small.finetune.method == "clean"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--space", "wrn", "--strategy", "surrogate"], ConfigError),
        (["--space", "wrn", "--budget", "1M"], BudgetError),  # below the smallest wrn network
        (["--space", "wrn", "--flops-budget", "100M"], BudgetError),
        (["--space", "wrn", "--objective", "jac_norm"], UnknownName),
        (["--space", "wrn", "--final-train"], ConfigError),
        (["--space", "wrn", "--prescreen", "density"], ConfigError),
        (["--space", "wrn", "--size", "huge"], UnknownName),
        (["--space", "darts", "--flops-budget", "1G"], ConfigError),
    ],
)
def test_refusals(options: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        search_settings("--preset", "tiny", *options)


@pytest.mark.parametrize(
    "strategy", ["random", "regularized_evolution", "local_search", "tpe", "nsga2"]
)
def test_both_budgets_bind_the_deployed_size(strategy: str) -> None:
    space = get_space("wrn")
    s = search_settings(
        "--space", "wrn", "--strategy", strategy, "--budget", "40M", "--flops-budget", "6G",
        "--preset", "tiny",
    )  # fmt: skip
    gate = BudgetGate(space, s.budget_spec, s.final_macro, s.dataset)
    strat = build_strategy(s, space, 0, gate)
    for _ in range(15):
        g = strat.ask()
        assert sizing.num_params(space, g) <= 40_000_000
        assert sizing.flops(space, g) <= 6_000_000_000  # type: ignore[attr-defined]
        strat.tell(g, Result({"pgd20_acc": sum(g.widths) / 60}, sizing.num_params(space, g)))  # type: ignore[attr-defined]
    assert gate.rejected > 0 and gate.report()["flops_limit"] == 6_000_000_000


def test_tiny_search_end_to_end(tmp_path: Path, data_root: Path) -> None:  # skips without data
    s = search_settings(
        "--space", "wrn", "--strategy", "regularized_evolution", "--budget", "20M",
        "--preset", "tiny", "--trials", "3", "--train-size", "32", "--val-size", "16",
        "--attack-steps", "1", "--finetune-epochs", "1", "--epochs", "2",
        "--data-dir", str(data_root),  # the fixture's folder, found without ROBNAS_DATA too
    )  # fmt: skip
    out = tmp_path / "wrn"
    summary = run_search(s, out)
    assert summary["trials"] == 3 and summary["best"] is not None
    best = summary["best"]
    g = Genotype.from_str(best["genotype"])
    space = get_space("wrn")
    assert best["num_params"] == sizing.num_params(space, g) <= 20_000_000
    assert best["proxy_num_params"] == sizing.num_params(space, g, s.search_macro)
    assert best["flops"] == sizing.flops(space, g)  # type: ignore[attr-defined]
    assert 0.0 <= best["metrics"]["pgd1_acc"] <= best["metrics"]["clean_acc"] <= 1.0
    assert best["metrics"]["fidelity_epochs"] in (1.0, 2.0)
    lines = (out / "trials.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("trial,genotype")
    assert json.loads((out / "config.json").read_text())["mode"] == "macro"
    # a config.json written before the settings were split by mode resumes: one more trial
    as_old_config(out)
    assert main(["search", "--resume", str(out), "--trials", "4", "--no-progress"]) == 0
    resumed = (out / "trials.csv").read_text().splitlines()
    assert len(resumed) == 5 and resumed[:4] == lines
