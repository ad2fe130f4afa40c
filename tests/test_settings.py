"""SearchSettings (JSON round trip, validation in one place) and RunDir (config, trials, summary)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robnas.errors import BudgetError, ConfigError, UnknownName
from robnas.result import Result
from robnas.search.common import BudgetGate, trial_row
from robnas.search.run import resolve_settings
from robnas.search.rundir import SUMMARY_KEYS, RunDir, entry, make_summary
from robnas.search.settings import SearchSettings, format_eps
from robnas.space.search_space import get_space


@pytest.fixture
def supernet_settings(data_root: Path, monkeypatch) -> SearchSettings:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    return resolve_settings(space="darts", budget="3M", eps="4/255", attack_steps=10, seed=3)


def test_json_round_trip(supernet_settings: SearchSettings) -> None:
    text = supernet_settings.to_json()
    again = SearchSettings.from_json(text)
    assert again == supernet_settings
    assert again.to_json() == text
    data = json.loads(text)
    assert data["eps"] == "4/255" and data["attack_steps"] == 10
    assert data["objective"] == "pgd10_acc"


def test_defaults_come_from_the_preset_and_the_budget_binds_the_paper_size(
    supernet_settings: SearchSettings,
) -> None:
    darts = get_space("darts")
    s = supernet_settings
    assert s.preset == "tiny" and s.trials == 10
    assert s.search_macro == darts.resolve_macro("tiny")  # the proxy
    assert s.final_macro == darts.resolve_macro("paper")  # the deployed network
    assert s.final_size == "paper" and s.budget == 3_000_000
    assert s.finetune is not None and s.finetune["epochs"] == 1


def test_final_size_by_name_or_by_counts(data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    darts = get_space("darts")
    small = resolve_settings(space="darts", final_size="small")
    assert small.final_macro == darts.resolve_macro("small")
    custom = resolve_settings(space="darts", final_size="C=20,layers=11")
    assert (custom.final_macro["C"], custom.final_macro["layers"]) == (20, 11)
    assert custom.final_size == "C=20,layers=11"
    with pytest.raises(UnknownName, match="unknown size 'huge'; known: paper, small, tiny"):
        resolve_settings(space="darts", final_size="huge")
    with pytest.raises(ConfigError, match="cannot read size"):
        resolve_settings(space="darts", final_size="C=many")
    # 300K is below the smallest paper-size darts network but above the smallest tiny one
    with pytest.raises(BudgetError, match="below the smallest darts network"):
        resolve_settings(space="darts", budget="300K")
    assert resolve_settings(space="darts", budget="300K", final_size="tiny").budget == 300_000


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"trials": 0}, ConfigError, "--trials must be at least 1"),
        ({"attack_steps": 0}, ConfigError, "--attack-steps must be at least 1"),
        ({"preset": "huge"}, UnknownName, "unknown preset 'huge'; known: paper, small, tiny"),
        ({"objective": "pgd20_acc"}, UnknownName, "unknown objective 'pgd20_acc'; known:"),
        ({"eps": "lots"}, ConfigError, "cannot read eps"),
        ({"repeats": 2}, ConfigError, "--repeats needs a tabular search"),
        ({"prescreen": "pgd10_acc"}, UnknownName, "unknown prescreen 'pgd10_acc'"),
    ],
)
def test_validation_lives_in_the_dataclass(
    supernet_settings: SearchSettings, change: dict, error: type, message: str
) -> None:
    data = {**supernet_settings.to_dict(), **change}
    with pytest.raises(error, match=message):
        SearchSettings.from_dict(data)


def test_unknown_config_keys_are_refused(supernet_settings: SearchSettings) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        SearchSettings.from_dict({**supernet_settings.to_dict(), "colour": "blue"})


def test_format_eps() -> None:
    assert format_eps(8 / 255) == "8/255" and format_eps(0.03) == "0.03"


def test_run_dir_config_check(supernet_settings: SearchSettings, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.init(supernet_settings) is False
    assert run.read_settings() == supernet_settings
    assert run.check(supernet_settings.replace(trials=50)) is True  # trials may change on resume
    with pytest.raises(ConfigError, match="different configuration"):
        run.check(supernet_settings.replace(seed=4))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("")
    with pytest.raises(ConfigError, match="not a robnas run"):
        RunDir(tmp_path / "other").check(supernet_settings)


def test_one_trials_writer_names_eps_and_steps(
    supernet_settings: SearchSettings, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.init(supernet_settings)
    result = Result({"clean_acc": 0.5, "pgd10_acc": 0.25}, num_params=2_000_000, seconds=1.5)
    g = get_space("darts").sample(np.random.default_rng(0)).to_str()
    rows = [trial_row(0, g, result, proxy_num_params=20_000, flops=123)]
    run.write_trials(rows)
    frame = run.read_trials()
    assert list(frame.columns) == [
        "trial", "genotype", "status", "num_params", "proxy_num_params", "flops", "seconds",
        "eps", "attack_steps", "clean_acc", "pgd10_acc",
    ]  # fmt: skip
    assert frame["eps"].tolist() == ["4/255"] and frame["attack_steps"].tolist() == [10]
    assert frame["num_params"].tolist() == [2_000_000]
    assert frame["proxy_num_params"].tolist() == [20_000]


def test_summary_has_one_shape(supernet_settings: SearchSettings, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    with pytest.raises(ValueError, match="summary lacks"):
        run.write_summary({"best": None})
    g = get_space("darts").sample(np.random.default_rng(1)).to_str()
    best = entry(genotype=g, metrics={"pgd10_acc": 0.3}, num_params=10, proxy_num_params=1, trial=0)
    summary = make_summary(supernet_settings, trials=1, failed=0, best=best, top_k=[best])
    assert tuple(summary) == SUMMARY_KEYS
    run.write_summary(summary)
    again = run.read_summary()
    assert again == summary
    assert len(list(run.topk_dir.glob("01_*.json"))) == 1
    # a summary written before the one shape still reads, with the new keys null
    run.summary_path.write_text(json.dumps({"best": None, "top_k": []}))
    assert set(run.read_summary()) == set(SUMMARY_KEYS)


def test_budget_gate_counts_rejections() -> None:
    space = get_space("darts")
    paper = space.resolve_macro("paper")
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(30)]
    sizes = [space.num_params(g, paper) for g in genotypes]
    limit = int(np.median(sizes))
    gate = BudgetGate(space, limit, paper, "cifar10")
    verdicts = [gate(g) for g in genotypes] + [gate(genotypes[0])]
    assert verdicts[:30] == [n <= limit for n in sizes]
    refused = sum(n > limit for n in sizes)
    assert gate.rejected_distinct == refused
    assert gate.rejected == refused + (sizes[0] > limit)
    assert gate.report()["limit"] == limit


def test_a_config_written_before_new_settings_existed_still_matches(
    supernet_settings: SearchSettings, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.init(supernet_settings)
    old = supernet_settings.replace(eps="8/255", attack_steps=20, objective="pgd20_acc")
    data = old.to_dict()
    for key in ("eps", "attack_steps", "final_size", "storage"):
        del data[key]
    run.config_path.write_text(json.dumps(data))
    assert run.check(old) is True
    assert run.read_settings() == old
