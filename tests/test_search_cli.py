"""`robnas search` end to end: tabular repeats and studies on the real benchmark, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from search_helpers import as_old_config

from robnas.cli import main
from robnas.data.tabular import REPORT_KEYS
from robnas.models import sizing


@pytest.fixture(scope="module")
def bench(data_root: Path) -> str:
    return str(data_root / "nb201-robustness")


def tabular(bench: str, out: Path, *extra: str) -> list[str]:
    return [
        "search", "--space", "nb201", "--benchmark", bench, "--objective", "fgsm@1",
        "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def test_tabular_repeats(bench: str, tmp_path: Path, capsys) -> None:
    args = ["--strategy", "local_search", "--trials", "30", "--repeats", "4", "--seed", "0"]
    assert main(tabular(bench, tmp_path / "a", *args)) == 0
    out = capsys.readouterr().out
    assert "4 searches x 30 queries" in out and "fgsm@1" in out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert len(summary["repeats"]) == 4
    for rep in summary["repeats"]:
        assert set(rep["metrics"]) == set(REPORT_KEYS)
        assert rep["genotype"].startswith("nb201:")
    assert summary["format"] == "robnas-summary" and summary["mode"] == "tabular"
    for key in REPORT_KEYS:
        assert summary["aggregate"]["mean"][key] == pytest.approx(
            np.mean([r["metrics"][key] for r in summary["repeats"]])
        )
    with open(tmp_path / "a" / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 30  # each repeat: 30 distinct queries
    for r in range(4):
        genotypes = [row["genotype"] for row in rows if row["repeat"] == str(r)]
        assert len(set(genotypes)) == 30
        best = max(float(row["fgsm@1"]) for row in rows if row["repeat"] == str(r))
        assert summary["repeats"][r]["metrics"]["fgsm@1"] == pytest.approx(best)
    # deterministic for a seed
    assert main(tabular(bench, tmp_path / "b", *args)) == 0
    again = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert again["repeats"] == summary["repeats"]


def test_tabular_study_and_resume(bench: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--strategy", "regularized_evolution", "--trials", "8", "--budget", "1M"]
    assert main(tabular(bench, run, *args)) == 0
    first = (run / "trials.csv").read_text().splitlines()
    assert len(first) == 9
    assert main(["search", "--resume", str(run), "--trials", "11", "--no-progress"]) == 0
    again = (run / "trials.csv").read_text().splitlines()
    assert len(again) == 12 and again[:9] == first
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["num_params"] <= 1_000_000
    assert summary["best"]["flops"] > 0
    assert summary["settings"]["budget"] == 1_000_000
    assert len(list((run / "topk").glob("*.json"))) == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "hill_climb"], "unknown strategy 'hill_climb'; known:"),
        (["--objective", "cw@1"], "unknown objective 'cw@1'"),
        (["--budget", "1K"], "below the smallest nb201 network"),
        (["--budget", "lots"], "cannot read budget"),
        (["--benchmark", "/nonexistent/bench"], "no benchmark at /nonexistent/bench"),
        (["--dataset", "cifar100"], "no accuracy files for dataset 'cifar100'"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    bench: str, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    out = tmp_path / "run"
    argv = tabular(bench, out, "--trials", "3")
    if extra[0] == "--benchmark":
        argv[argv.index("--benchmark") + 1] = extra[1]
    else:
        argv += extra
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_budget_message_states_the_minimum(bench: str, tmp_path: Path, capsys) -> None:
    from robnas.space.search_space import get_space

    space = get_space("nb201")
    minimum = sizing.min_params(space, space.resolve_macro("paper"))
    assert main(tabular(bench, tmp_path / "r", "--budget", "1K")) == 2
    assert f"{minimum} parameters" in capsys.readouterr().err


def test_an_old_config_resumes_or_is_refused_in_one_line(
    bench: str, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    assert main(tabular(bench, run, "--trials", "3", "--strategy", "local_search")) == 0
    first = (run / "trials.csv").read_text().splitlines()
    as_old_config(run)  # as the settings were written before they were split by mode
    assert main(["search", "--resume", str(run), "--trials", "5", "--no-progress"]) == 0
    again = (run / "trials.csv").read_text().splitlines()
    assert len(again) == 6 and again[:4] == first
    as_old_config(run, supernet="/x/supernet.pt")  # a field tabular searches never had
    capsys.readouterr()
    assert main(["search", "--resume", str(run), "--trials", "6", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("setting supernet='/x/supernet.pt' does not apply to a tabular search; "
                        "is the config.json edited by hand?")  # fmt: skip
    assert len(err.splitlines()) == 1
    assert (run / "trials.csv").read_text().splitlines() == again


def test_a_run_dir_of_another_config_is_refused(bench: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(tabular(bench, run, "--trials", "3", "--seed", "0")) == 0
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(tabular(bench, run, "--trials", "3", "--seed", "1")) == 2
    assert "different configuration" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    assert main(["search", "--resume", str(tmp_path / "missing"), "--no-progress"]) == 2


def test_supernet_options_are_validated_before_anything_is_written(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["search", "--space", "darts", "--objective", "fog@3", "--out", str(out)]) == 2
    assert "fog@3 is a column of the NB201 robustness dataset" in capsys.readouterr().err
    assert main(["search", "--space", "darts", "--objective", "nope", "--out", str(out)]) == 2
    assert "known: clean, fgsm@<eps>, pgd@<eps>, pgd20_acc" in capsys.readouterr().err
    assert main(["search", "--space", "darts", "--budget", "10K", "--out", str(out)]) == 2
    assert "below the smallest darts network" in capsys.readouterr().err
    missing = str(tmp_path / "none.pt")
    assert main(["search", "--space", "darts", "--supernet", missing, "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["search", "--space", "darts", "--repeats", "3", "--out", str(out)]) == 2
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_supernet(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> str:
    """An untrained tiny darts supernet checkpoint (a reused `--supernet`: no training) that
    records the split of the searches below (seed 0, 32 + 16 images): none of it is scored."""
    import torch

    from robnas.checkpoint import split_record
    from robnas.data.datasets import load_dataset, split_train_val
    from robnas.io import atomic_torch_save
    from robnas.models.supernet import Supernet
    from robnas.space.search_space import get_space

    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    torch.manual_seed(0)
    pool = load_dataset("cifar10", "train", data_dir=data_root, limit=48, seed=0)
    ckpt = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    atomic_torch_save(
        ckpt,
        {
            "format": "robnas-checkpoint", "version": 1,
            "model": Supernet(space, macro, "cifar10").state_dict(),
            "arch": "supernet:darts", "space": "darts", "macro": macro, "dataset": "cifar10",
            "split": split_record(*split_train_val(pool, 16, 0), dataset="cifar10", seed=0),
        },
    )  # fmt: skip
    return str(ckpt)


@pytest.fixture
def made_attacks(monkeypatch) -> list[tuple[str, float, dict]]:
    """Every attack the evaluators build, as (name, eps, options)."""
    import robnas.evaluators.base as evaluator_base

    made: list[tuple[str, float, dict]] = []
    real = evaluator_base.make_attack

    def spy(name: str, *, eps: float, **kw):  # type: ignore[no-untyped-def]
        made.append((name, eps, kw))
        return real(name, eps=eps, **kw)

    monkeypatch.setattr(evaluator_base, "make_attack", spy)
    return made


def supernet_search(ckpt: str, out: Path, *extra: str) -> list[str]:
    return [
        "search", "--space", "darts", "--strategy", "random", "--supernet", ckpt,
        "--train-size", "32", "--val-size", "16", "--finetune-epochs", "0",
        "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_supernet_search_end_to_end(
    data_root: Path, tmp_path: Path, monkeypatch, tiny_supernet: str
) -> None:
    """The supernet path on real CIFAR-10 images, kept small: a given (untrained) supernet
    checkpoint is reused, 2 candidates are scored on 16 held-out images, the run resumes."""
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    run = tmp_path / "run"
    assert main(supernet_search(tiny_supernet, run, "--budget", "5M", "--trials", "2")) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trials"] == 2
    best = summary["best"]
    assert {"clean_acc", "pgd20_acc", "fsp_dist", "jac_norm"} <= set(best["metrics"])
    assert 0 < best["num_params"] <= 5_000_000 and best["flops"] > 0
    with open(run / "trials.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    # resume: finished trials are kept, one more is scored
    assert main(["search", "--resume", str(run), "--trials", "3", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["trials"] == 3
    # a run whose config.json was written before the settings were split by mode resumes too
    as_old_config(run)
    assert main(["search", "--resume", str(run), "--trials", "4", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["trials"] == 4


def test_a_search_starts_its_supernet_from_its_seed(
    data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """torch's global generator is seeded differently in every process; the supernet a search
    trains starts from --seed alone, so a search is repeatable."""
    import robnas.search.supernet as search_supernet

    class Stop(Exception):
        pass

    seen: list[dict[str, torch.Tensor]] = []

    def record(model, *args, **kw):  # type: ignore[no-untyped-def]
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        raise Stop

    monkeypatch.setattr(search_supernet, "train", record)
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    argv = [
        "search",
        "--space",
        "nb201",
        "--preset",
        "tiny",
        "--train-size",
        "32",
        "--val-size",
        "16",
    ]
    for i, (global_seed, seed) in enumerate(((1, "0"), (2, "0"), (2, "1"))):
        torch.manual_seed(global_seed)
        with pytest.raises(Stop):
            main([*argv, "--seed", seed, "--out", str(tmp_path / f"run{i}"), "--no-progress"])
    first, again, other = seen
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.slow
def test_a_search_trains_its_supernet_with_the_presets_sampler(
    data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """The tiny preset's supernet shrinks from dense paths (dense_start) over the first half of
    its run when the search trains it, as `robnas supernet train --preset tiny` does; --method
    says how it trains (clean: no attack)."""
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    run = tmp_path / "run"
    argv = [
        "search", "--space", "darts", "--preset", "tiny", "--strategy", "random", "--trials", "1",
        "--train-size", "128", "--val-size", "16", "--finetune-epochs", "0", "--attack-steps", "1",
        "--method", "clean", "--out", str(run), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    ckpt = torch.load(run / "supernet" / "last.pt", weights_only=False)
    assert ckpt["config"]["method"] == "clean"  # the supernet trained as --method said
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["method"] == "clean"  # and so would the candidates (no finetune here)
    state = ckpt["sampler"]
    assert state["name"] == "dense_start"
    assert state["drawn"] == 4 and state["dense_steps"] == 2  # 128 images at batch 32, half dense


@pytest.mark.slow  # ~half of it builds the paper-size FLOP table once per process
def test_budget_binds_the_paper_size_of_a_tiny_proxy_search(
    data_root: Path,
    tmp_path: Path,
    monkeypatch,
    capsys,
    tiny_supernet: str,
    made_attacks: list[tuple[str, float, dict]],
) -> None:
    """`--budget 3M --preset tiny`: every cell found has at most 3M parameters at the paper
    size (most darts cells have more), the proxy count is stored beside it, rejections are
    counted, and the objective's eps and steps reach the attack and the trials table."""
    from robnas.genotype import Genotype
    from robnas.search.rundir import RunDir
    from robnas.space.search_space import get_space

    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    attacks = made_attacks
    run = tmp_path / "run"
    extra = ["--budget", "3M", "--preset", "tiny", "--trials", "2", "--eps", "4/255"]
    assert main(supernet_search(tiny_supernet, run, *extra, "--attack-steps", "2")) == 0
    out = capsys.readouterr().out
    space = get_space("darts")
    paper, tiny = space.resolve_macro("paper"), space.resolve_macro("tiny")
    frame = RunDir(run).read_trials()
    assert len(frame) == 2
    for row in frame.itertuples():
        g = Genotype.from_str(row.genotype)
        assert row.num_params == sizing.num_params(space, g, paper) <= 3_000_000
        assert row.proxy_num_params == sizing.num_params(space, g, tiny)
    assert "pgd2_acc" in frame.columns and "pgd20_acc" not in frame.columns
    assert set(frame["eps"]) == {"4/255"} and set(frame["attack_steps"]) == {2}
    assert attacks and all(eps == pytest.approx(4 / 255) for _, eps, _ in attacks)
    assert all(kw.get("steps") == 2 for _, _, kw in attacks)
    summary = RunDir(run).read_summary()
    assert summary["settings"]["final_macro"] == paper
    assert summary["settings"]["search_macro"] == tiny
    assert summary["best"]["num_params"] <= 3_000_000
    assert summary["best"]["proxy_num_params"] == sizing.num_params(
        space, Genotype.from_str(summary["best"]["genotype"]), tiny
    )
    budget = summary["budget"]
    assert budget["limit"] == 3_000_000 and budget["rejected_distinct"] > 0
    assert budget["rejected"] >= budget["rejected_distinct"]
    assert f"{budget['rejected_distinct']} proposed architectures rejected" in out
    assert "params at the final size paper" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("objective", "extra", "attack", "steps", "key"),
    [
        ("fgsm@1", [], "fgsm", 1, "fgsm_acc"),  # FGSM accuracy at 1/255
        ("pgd@1", ["--attack-steps", "3"], "pgd", 3, "pgd3_acc"),  # PGD-3 at 1/255
    ],
)
def test_a_network_search_measures_the_attack_its_objective_names(
    data_root: Path,
    tmp_path: Path,
    monkeypatch,
    tiny_supernet: str,
    made_attacks: list[tuple[str, float, dict]],
    objective: str,
    extra: list[str],
    attack: str,
    steps: int,
    key: str,
) -> None:
    """`--objective fgsm@1` names what the NB201 robustness dataset's `fgsm@1` column holds;
    a network search measures it on held-out images: FGSM at 1/255, stored as `fgsm_acc`."""
    from robnas.search.rundir import RunDir

    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    made = made_attacks
    run = tmp_path / "run"
    argv = supernet_search(tiny_supernet, run, "--trials", "1", "--objective", objective, *extra)
    assert main(argv) == 0
    assert made and {name for name, _, _ in made} == {attack}
    assert all(eps == pytest.approx(1 / 255) for _, eps, _ in made)
    assert all(kw.get("steps", 1) == steps for _, _, kw in made)
    frame = RunDir(run).read_trials()
    assert key in frame.columns and "pgd20_acc" not in frame.columns
    assert set(frame["eps"]) == {"1/255"} and set(frame["attack_steps"]) == {steps}
    summary = RunDir(run).read_summary()
    assert summary["objective"] == {"key": key, "direction": "maximize"}
    assert 0 <= summary["best"]["metrics"][key] <= summary["best"]["metrics"]["clean_acc"]


def test_tabular_prescreen_reads_no_benchmark_column(bench: str, tmp_path: Path, capsys) -> None:
    # ranking by the benchmark's PGD column would read the answer without paying a query
    out = tmp_path / "p"
    assert main(tabular(bench, out, "--trials", "5", "--prescreen", "pgd@1")) == 2
    assert "benchmark's accuracy" in capsys.readouterr().err
    assert not out.exists()
    assert main(tabular(bench, tmp_path / "d", "--trials", "3", "--prescreen", "density")) == 0
