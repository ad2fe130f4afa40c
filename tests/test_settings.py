"""Search settings: one frozen type per mode (JSON round trip, validation in one place), configs
written before the split still read, and RunDir (config, trials, summary)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from search_helpers import search_settings

from robnas.config import TrainConfig, get_preset
from robnas.errors import BudgetError, ConfigError, UnknownName
from robnas.models import sizing
from robnas.result import Result
from robnas.search.common import BudgetGate
from robnas.search.rundir import SUMMARY_KEYS, RunDir, TrialRecord, entry, make_summary, trial_row
from robnas.search.settings import (
    MacroSettings,
    SearchSettings,
    SupernetSettings,
    TabularSettings,
    settings_from_dict,
    settings_from_json,
)
from robnas.space.search_space import get_space
from robnas.specs import AttackSpec, Budget, Eps

BENCH = "nb201-robustness"


@pytest.fixture
def supernet_settings(data_root: Path, monkeypatch) -> SupernetSettings:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    s = search_settings("--budget", "3M", "--eps", "4/255", "--attack-steps", "10", "--seed", "3")
    assert isinstance(s, SupernetSettings)
    return s


@pytest.fixture
def every_mode(data_root: Path, monkeypatch) -> list[SearchSettings]:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    return [
        search_settings("--space", "darts", "--objective", "fgsm@1", "--method", "clean"),
        search_settings("--space", "nb201", "--benchmark", str(data_root / BENCH)),
        search_settings("--space", "wrn", "--budget", "20M", "--flops-budget", "5G"),
    ]


def test_every_mode_has_its_own_type_and_round_trips(every_mode: list[SearchSettings]) -> None:
    supernet, tabular, macro = every_mode
    assert (type(supernet), type(tabular), type(macro)) == (
        SupernetSettings,
        TabularSettings,
        MacroSettings,
    )
    for s in every_mode:
        text = s.to_json()
        data = json.loads(text)
        assert data["mode"] == s.mode  # config.json says the mode
        again = settings_from_json(text)
        assert again == s and type(again) is type(s) and again.to_json() == text
        assert type(s).from_json(text) == s
    # each type holds its mode's fields only (not one union of three modes)
    assert "benchmark" not in json.loads(supernet.to_json())
    assert "search_macro" not in json.loads(tabular.to_json())
    assert "flops_budget" in json.loads(macro.to_json())
    assert "supernet" not in json.loads(macro.to_json())


def test_supernet_json_round_trip(supernet_settings: SupernetSettings) -> None:
    text = supernet_settings.to_json()
    data = json.loads(text)
    assert data["eps"] == "4/255" and data["attack_steps"] == 10
    assert data["objective"] == "pgd10_acc"
    assert supernet_settings.attack == AttackSpec("pgd", Eps.of_255(4), 10)
    assert isinstance(supernet_settings.train, TrainConfig)


def test_defaults_come_from_the_preset_and_the_budget_binds_the_paper_size(
    supernet_settings: SupernetSettings,
) -> None:
    darts = get_space("darts")
    s = supernet_settings
    assert s.preset == "tiny" and s.trials == 10
    assert s.search_macro == darts.resolve_macro("tiny")  # the proxy
    assert s.final_macro == darts.resolve_macro("paper")  # the deployed network
    assert s.final_size == "paper" and s.budget == 3_000_000
    assert s.finetune is not None and s.finetune.epochs == 1
    assert s.train == get_preset("tiny").train.__class__(
        **{**get_preset("tiny").train.to_dict(), "seed": 3}
    )


def test_the_default_objective_of_a_darts_search_is_pgd20_at_8_255(
    data_root: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    s = search_settings("--space", "darts", "--budget", "5M", "--preset", "tiny")
    assert isinstance(s, SupernetSettings)
    assert (s.objective, s.direction) == ("pgd20_acc", "maximize")
    assert s.attack == AttackSpec("pgd", Eps.parse("8/255"), 20)
    data = s.to_dict()
    assert (data["eps"], data["attack_steps"]) == ("8/255", 20)  # as config.json held them


def test_objectives_name_the_attack_the_evaluator_measures(
    every_mode: list[SearchSettings],
) -> None:
    supernet, tabular, macro = every_mode
    assert isinstance(supernet, SupernetSettings) and isinstance(macro, MacroSettings)
    # fgsm@1 means FGSM accuracy at 1/255: a measured metric in a network search ...
    assert supernet.objective == "fgsm_acc"
    assert supernet.attack == AttackSpec("fgsm", Eps.of_255(1), 1)
    assert str(supernet.eps) == "1/255" and supernet.attack_steps == 1
    # ... and the dataset's column in a tabular search (the default objective there)
    assert tabular.objective == "fgsm@1"
    # --method: how the supernet and the candidates train
    assert supernet.train.method == "clean" and supernet.finetune is not None
    assert supernet.finetune.method == "clean"
    # the default objective of a network search: PGD-20 at 8/255
    assert macro.objective == "pgd20_acc" and macro.attack == AttackSpec()
    assert macro.budget_spec == Budget(20_000_000, 5_000_000_000)


def test_objective_spellings_across_modes(data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    pgd = search_settings("--objective", "pgd@1", "--attack-steps", "5")
    assert isinstance(pgd, SupernetSettings)
    assert pgd.objective == "pgd5_acc" and pgd.attack == AttackSpec("pgd", Eps.of_255(1), 5)
    clean = search_settings("--space", "wrn", "--objective", "clean")
    assert clean.objective == "clean_acc"
    bench = str(data_root / BENCH)
    assert (
        search_settings(
            "--space", "nb201", "--benchmark", bench, "--objective", "clean_acc"
        ).objective
        == "clean"
    )
    assert (
        search_settings(
            "--space", "nb201", "--benchmark", bench, "--objective", "PGD@8/255"
        ).objective
        == "pgd@8"
    )
    with pytest.raises(ConfigError, match="measured on trained networks"):
        search_settings("--space", "nb201", "--benchmark", bench, "--objective", "pgd20_acc")
    with pytest.raises(ConfigError, match="a column of the NB201 robustness dataset"):
        search_settings("--space", "darts", "--objective", "fog@3")
    with pytest.raises(ConfigError, match="--eps and --attack-steps set a network search"):
        search_settings("--space", "nb201", "--benchmark", bench, "--eps", "1/255")
    with pytest.raises(ConfigError, match="--method set a network search's training"):
        search_settings("--space", "nb201", "--benchmark", bench, "--method", "clean")


def test_final_size_by_name_or_by_counts(data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    darts = get_space("darts")
    small = search_settings("--final-size", "small")
    assert small.final_macro == darts.resolve_macro("small")
    custom = search_settings("--final-size", "C=20,layers=11")
    assert (custom.final_macro["C"], custom.final_macro["layers"]) == (20, 11)
    assert custom.final_size == "C=20,layers=11"
    with pytest.raises(UnknownName, match="unknown size 'huge'; known: paper, small, tiny"):
        search_settings("--final-size", "huge")
    with pytest.raises(ConfigError, match="cannot read size"):
        search_settings("--final-size", "C=many")
    # 300K is below the smallest paper-size darts network but above the smallest tiny one
    with pytest.raises(BudgetError, match="below the smallest darts network"):
        search_settings("--budget", "300K")
    assert search_settings("--budget", "300K", "--final-size", "tiny").budget == 300_000
    # --size moves the proxy the supernet trains at, not the deployed size
    proxy = search_settings("--size", "small")
    assert isinstance(proxy, SupernetSettings)
    assert proxy.search_macro == darts.resolve_macro("small")
    assert proxy.final_macro == darts.resolve_macro("paper")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"trials": 0}, ConfigError, "--trials must be at least 1"),
        ({"attack_steps": 0}, ConfigError, "--attack-steps must be at least 1"),
        ({"preset": "huge"}, UnknownName, "unknown preset 'huge'; known: paper, small, tiny"),
        ({"objective": "pgd20_acc"}, UnknownName, "unknown objective 'pgd20_acc'; known:"),
        ({"objective": "fgsm_acc"}, ConfigError, "FGSM takes one step"),
        ({"eps": "lots"}, ConfigError, "cannot read eps"),
        ({"repeats": 2}, ConfigError, "repeats=2 does not apply to a supernet search"),
        ({"benchmark": "/x"}, ConfigError, "benchmark='/x' does not apply to a supernet search"),
        ({"prescreen": "pgd10_acc"}, UnknownName, "unknown prescreen 'pgd10_acc'"),
        ({"val_size": 0}, ConfigError, "--val-size must be at least 1"),
        ({"train": {"epochs": 0}}, ConfigError, "epochs must be at least 1"),
        ({"train": {"colour": 1}}, ConfigError, "cannot read the train schedule"),
    ],
)
def test_validation_lives_in_the_settings_type(
    supernet_settings: SupernetSettings, change: dict, error: type, message: str
) -> None:
    data = {**supernet_settings.to_dict(), **change}
    with pytest.raises(error, match=message):
        settings_from_dict(data)


def test_unknown_config_keys_and_modes_are_refused(supernet_settings: SupernetSettings) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        settings_from_dict({**supernet_settings.to_dict(), "colour": "blue"})
    with pytest.raises(UnknownName, match="unknown mode 'grid'"):
        settings_from_dict({**supernet_settings.to_dict(), "mode": "grid"})
    with pytest.raises(ConfigError, match="read as a tabular search"):
        TabularSettings.from_dict(supernet_settings.to_dict())


# -- configs written before the settings were split by mode ----------------------------------------

#: What the one-union SearchSettings wrote for each mode (the fields of the other modes at their
#: defaults), as the base version's `robnas search` wrote them.
UNION = {
    "attack_steps": 20, "benchmark": None, "benchmark_macro": None, "budget": None,
    "data_dir": None, "dataset": "cifar10", "direction": "maximize", "eps": "8/255",
    "final_macro": {}, "final_size": "paper", "final_train": False, "finetune": None,
    "finetune_size": None, "flops_budget": None, "objective": "pgd20_acc", "prescreen": None,
    "prescreen_ratio": 4, "preset": "tiny", "repeats": 1, "score_size": None,
    "search_macro": None, "seed": 0, "space": "darts", "storage": None, "strategy": "random",
    "supernet": None, "top_k": 5, "train": None, "train_size": None, "trials": 2,
    "val_size": None,
}  # fmt: skip


def _old(mode: str, **fields: object) -> dict:
    return {**UNION, "mode": mode, **fields}


def test_an_old_config_of_each_mode_reads_as_its_type() -> None:
    tiny = get_preset("tiny").train.to_dict()
    supernet = settings_from_dict(
        _old(
            "supernet", search_macro={"C": 8, "layers": 5}, train=tiny, train_size=512, val_size=256
        )
    )
    assert isinstance(supernet, SupernetSettings) and supernet.train == TrainConfig(**tiny)
    assert supernet.attack == AttackSpec() and supernet.train_size == 512
    tabular = settings_from_dict(
        _old("tabular", space="nb201", benchmark="/data/nb201", benchmark_macro={"C": 16},
             objective="fgsm@1", preset="paper", repeats=3)
    )  # fmt: skip
    assert isinstance(tabular, TabularSettings) and tabular.repeats == 3
    macro = settings_from_dict(
        _old("macro", space="wrn", search_macro={"stem": 8}, train=tiny, finetune=tiny,
             flops_budget=5_000_000_000, final_size="default")
    )  # fmt: skip
    assert isinstance(macro, MacroSettings) and macro.flops_budget == 5_000_000_000
    # a field of another mode that holds more than its old default is refused in one line
    with pytest.raises(ConfigError) as err:
        settings_from_dict(_old("macro", space="wrn", search_macro={}, train=tiny, supernet="x"))
    assert "supernet='x' does not apply to a macro search" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_old_config_still_matches_its_run_dir(tmp_path: Path) -> None:
    tiny = get_preset("tiny").train.to_dict()
    old = _old("supernet", search_macro={"C": 8, "layers": 5}, train=tiny, val_size=16)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config_path.write_text(json.dumps(old))
    settings = run.read_settings()
    assert run.check(settings) is True  # resumes: the same configuration
    assert run.check(settings.to_dict()) is True  # as a study passes it
    with pytest.raises(ConfigError, match="different configuration"):
        run.check(settings.replace(seed=4))


def test_run_dir_config_check(supernet_settings: SupernetSettings, tmp_path: Path) -> None:
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
    supernet_settings: SupernetSettings, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.init(supernet_settings)
    result = Result({"clean_acc": 0.5, "pgd10_acc": 0.25}, num_params=2_000_000, seconds=1.5)
    g = get_space("darts").sample(np.random.default_rng(0)).to_str()
    rows = [trial_row(TrialRecord(0, g, result, 123, proxy_num_params=20_000))]
    run.write_trials(rows)
    frame = run.read_trials()
    assert list(frame.columns) == [
        "trial", "genotype", "status", "num_params", "proxy_num_params", "flops", "seconds",
        "eps", "attack_steps", "clean_acc", "pgd10_acc",
    ]  # fmt: skip
    assert frame["eps"].tolist() == ["4/255"] and frame["attack_steps"].tolist() == [10]
    assert frame["num_params"].tolist() == [2_000_000]
    assert frame["proxy_num_params"].tolist() == [20_000]


def test_summary_has_one_shape(supernet_settings: SupernetSettings, tmp_path: Path) -> None:
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
    sizes = [sizing.num_params(space, g, paper) for g in genotypes]
    limit = int(np.median(sizes))
    gate = BudgetGate(space, Budget(limit), paper, "cifar10")
    verdicts = [gate(g) for g in genotypes] + [gate(genotypes[0])]
    assert verdicts[:30] == [n <= limit for n in sizes]
    refused = sum(n > limit for n in sizes)
    assert gate.rejected_distinct == refused
    assert gate.rejected == refused + (sizes[0] > limit)
    assert gate.report()["limit"] == limit and gate.report()["flops_limit"] is None
    with pytest.raises(ConfigError, match="--flops-budget applies to macro spaces"):
        BudgetGate(space, Budget(limit, 10**9), paper, "cifar10")


def test_a_config_written_before_new_settings_existed_still_matches(
    supernet_settings: SupernetSettings, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.init(supernet_settings)
    old = supernet_settings.replace(eps=Eps.of_255(8), attack_steps=20, objective="pgd20_acc")
    data = old.to_dict()
    for key in ("eps", "attack_steps", "final_size", "storage"):
        del data[key]
    run.config_path.write_text(json.dumps(data))
    assert run.check(old) is True
    assert run.read_settings() == old
