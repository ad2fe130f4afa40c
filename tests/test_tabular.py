"""Tabular NB201 robustness benchmark: values, isomorphs, keys, cache, query counting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from data_helpers import needs

from robnas.data import tabular
from robnas.errors import DataError, InvalidGenotype, UnknownName
from robnas.evaluators.tabular import TabularEvaluator
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.space.search_space import get_space

pytestmark = needs("nb201-robustness")


@pytest.fixture(scope="module")
def root(data_root: Path) -> Path:
    return data_root / "nb201-robustness"


@pytest.fixture(scope="module")
def meta(root: Path) -> dict:
    return json.loads((root / "meta.json").read_text())


@pytest.fixture(scope="module")
def bench(root: Path) -> tabular.TabularBenchmark:
    return tabular.load_benchmark(root)


def _json_value(root: Path, key: str, iso: str, index: int | None = None) -> float:
    data = json.loads((root / "cifar10" / f"{key}_accuracy.json").read_text())
    value = data["cifar10"][key]["accuracy"][iso]
    return value if index is None else value[index]


def test_values_match_the_json_files(bench, root: Path, meta: dict) -> None:
    eps = meta["epsilons"]
    rng = np.random.default_rng(0)
    for i in rng.choice(len(meta["ids"]), size=5, replace=False):
        entry = meta["ids"][str(i)]
        g = Genotype.from_str(entry["nb201-string"], "nb201")
        iso = entry["isomorph"]
        assert bench.value(g, "clean") == pytest.approx(_json_value(root, "clean", iso))
        fgsm = _json_value(root, "fgsm@Linf", iso, eps["fgsm@Linf"].index(1.0))
        assert bench.value(g, "fgsm@1") == pytest.approx(fgsm)
        pgd = _json_value(root, "pgd@Linf", iso, eps["pgd@Linf"].index(8.0))
        assert bench.value(g, "pgd@8") == pytest.approx(pgd)
        sq = _json_value(root, "aa_square@Linf", iso, eps["aa_square@Linf"].index(0.5))
        assert bench.value(g, "aa_square@0.5") == pytest.approx(sq)
        fog = _json_value(root, "fog", iso, 2)
        assert bench.value(g, "fog@3") == pytest.approx(fog)


def test_isomorphs_share_their_results(bench, meta: dict) -> None:
    pairs = [(k, v["isomorph"]) for k, v in meta["ids"].items() if v["isomorph"] != k][:20]
    assert pairs
    for k, iso in pairs:
        a = Genotype.from_str(meta["ids"][k]["nb201-string"], "nb201")
        b = Genotype.from_str(meta["ids"][iso]["nb201-string"], "nb201")
        assert a != b
        assert bench.metrics(a, tabular.REPORT_KEYS) == bench.metrics(b, tabular.REPORT_KEYS)
    assert bench.num_unique == len({v["isomorph"] for v in meta["ids"].values()})


def test_key_spellings_and_unknown_objectives(bench) -> None:
    assert tabular.normalize_key("FGSM@1.0") == "fgsm@1"
    assert tabular.normalize_key("pgd@8/255") == "pgd@8"
    assert bench.column("aa_apgd-ce@1") == bench.column("aa_apgd-ce@1.0")
    with pytest.raises(UnknownName, match="fgsm"):
        bench.column("cw@1")
    with pytest.raises(UnknownName):
        bench.column("fgsm@9")  # not an evaluated epsilon


def test_missing_benchmark_and_dataset(tmp_path: Path, root: Path) -> None:
    with pytest.raises(DataError, match="meta.json"):
        tabular.load_benchmark(tmp_path)
    with pytest.raises(DataError, match="cifar100.*present: cifar10"):
        tabular.load_benchmark(root, "cifar100")


def test_parsed_arrays_are_cached_as_npz(tmp_path: Path, root: Path, monkeypatch) -> None:
    copy = tmp_path / "bench"
    (copy / "cifar10").mkdir(parents=True)
    shutil.copy(root / "meta.json", copy / "meta.json")
    for key in ("clean", "fgsm@Linf"):
        shutil.copy(root / "cifar10" / f"{key}_accuracy.json", copy / "cifar10")
    monkeypatch.setenv("ROBNAS_CACHE", str(tmp_path / "cache"))
    first = tabular.load_benchmark(copy)
    assert list((tmp_path / "cache").glob("nb201-robustness-cifar10-*.npz"))
    tabular._load.cache_clear()

    def boom(*args, **kw):
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(tabular, "_parse", boom)
    second = tabular.load_benchmark(copy)
    assert second.columns == first.columns
    assert np.array_equal(second.table, first.table, equal_nan=True)


def isomorph_pair(meta: dict) -> tuple[Genotype, Genotype]:
    k, v = next((k, v) for k, v in meta["ids"].items() if v["isomorph"] != k)
    a = Genotype.from_str(meta["ids"][k]["nb201-string"], "nb201")
    b = Genotype.from_str(meta["ids"][v["isomorph"]]["nb201-string"], "nb201")
    return a, b


def test_evaluator_counts_isomorphism_classes(bench, meta: dict) -> None:
    space = get_space("nb201")
    ev = TabularEvaluator(bench, space, objective="fgsm@1")
    a, iso = isomorph_pair(meta)
    b = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert a != iso and space.canonical(a) == space.canonical(iso)
    r1 = ev.evaluate(a)
    assert not ev.is_cached(b) and ev.is_cached(iso)
    ev.evaluate(a)
    ev.evaluate(iso)  # another string of the same class: a cache hit, not a query
    ev.evaluate(b)
    assert (ev.queries, ev.cache_hits) == (2, 2)
    assert ev.queried == [a.to_str(), b.to_str()]
    assert set(r1.metrics) == set(tabular.REPORT_KEYS) | {"fgsm@1"}
    assert r1.num_params == sizing.num_params(space, a, space.resolve_macro("paper"))
    ev.reset()
    assert ev.queries == 0 and ev.queried == []


def test_evaluator_rejects_other_spaces_and_free_cells(bench) -> None:
    with pytest.raises(InvalidGenotype, match="nb201"):
        TabularEvaluator(bench, get_space("darts"), objective="clean")
    space = get_space("nb201")
    ev = TabularEvaluator(bench, space, objective="clean")
    free = space.sample(np.random.default_rng(0), free=True)
    with pytest.raises(InvalidGenotype, match="shared"):
        ev.evaluate(free)


def test_optimum_is_over_the_cells_within_the_budget(bench, meta: dict) -> None:
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    budget = 1_000_000
    # independently: walk the dataset's index, count parameters, keep the best within budget
    best_all, best_within = -1.0, -1.0
    for entry in meta["ids"].values():
        g = Genotype.from_str(entry["nb201-string"], "nb201")
        value = bench.value(g, "clean")
        best_all = max(best_all, value)
        if sizing.num_params(space, g, macro) <= budget:
            best_within = max(best_within, value)
    assert bench.optimum("clean")[0] == best_all
    value, text = bench.optimum("clean", lambda g: sizing.num_params(space, g, macro) <= budget)
    assert value == best_within < best_all  # the unconstrained optimum is over 1M parameters
    assert sizing.num_params(space, space.parse(text), macro) <= budget
    assert bench.value(space.parse(text), "clean") == value


# -- tabular searches through the CLI: classes, budget-true optimum, honest prescreen ------------


def search(root: Path, out: Path, *extra: str) -> int:
    from robnas.cli import main

    argv = ["search", "--space", "nb201", "--benchmark", str(root), "--out", str(out)]
    return main([*argv, "--no-progress", *extra])


def test_repeats_list_the_queried_genotypes_one_per_class(root: Path, tmp_path: Path) -> None:
    import csv

    space = get_space("nb201")
    args = ["--strategy", "regularized_evolution", "--trials", "40", "--repeats", "3"]
    assert search(root, tmp_path / "r", *args) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    with open(tmp_path / "r" / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    for rep in summary["repeats"]:
        queried = rep["queried"]
        assert len(queried) == rep["queries"] == 40
        assert len({space.canonical(space.parse(q)) for q in queried}) == 40  # one per class
        assert rep["asks"] >= 40
        assert queried == [row["genotype"] for row in rows if row["repeat"] == str(rep["repeat"])]
    assert summary["queries"] == summary["trials"] == 3 * 40


def test_budget_true_optimum(root: Path, bench, tmp_path: Path) -> None:
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    budget = 1_000_000
    args = ["--objective", "clean", "--budget", "1M", "--strategy", "local_search"]
    assert search(root, tmp_path / "b", *args, "--trials", "100", "--repeats", "4") == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    agg = summary["aggregate"]
    within = bench.optimum("clean", lambda g: sizing.num_params(space, g, macro) <= budget)[0]
    assert agg["optimum"] == within < bench.optimum("clean")[0]
    assert sizing.num_params(space, space.parse(agg["optimum_genotype"]), macro) <= budget
    returned = [rep["metrics"]["clean"] for rep in summary["repeats"]]
    assert all(rep["num_params"] <= budget for rep in summary["repeats"])
    assert agg["found_optimum"] == np.mean([v == within for v in returned])
    assert agg["found_optimum"] > 0  # local search reaches the optimum within the budget


@pytest.mark.parametrize("column", ["pgd@1", "clean", "FGSM@1.0", "aa_square@1"])
def test_prescreen_by_a_benchmark_column_is_refused(
    root: Path, tmp_path: Path, capsys, column: str
) -> None:
    out = tmp_path / "p"
    assert search(root, out, "--trials", "5", "--repeats", "2", "--prescreen", column) == 2
    err = capsys.readouterr().err.strip()
    assert "benchmark's accuracy" in err and "density" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_prescreen_counts_cheap_evaluations_beside_queries(root: Path, tmp_path: Path) -> None:
    args = ["--strategy", "random", "--trials", "10", "--repeats", "2"]
    screen = ["--prescreen", "density", "--prescreen-ratio", "4"]
    assert search(root, tmp_path / "d", *args, *screen) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    for rep in summary["repeats"]:
        assert rep["queries"] == 10
        assert rep["asks"] <= rep["cheap_evaluations"] <= 4 * rep["asks"]
    assert summary["cheap_evaluations"] == sum(r["cheap_evaluations"] for r in summary["repeats"])
    assert summary["queries"] == 20  # the cheap scores are not queries
    # a study reports them too
    assert search(root, tmp_path / "s", "--strategy", "random", "--trials", "3", *screen) == 0
    study = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert study["queries"] == 3 and study["cheap_evaluations"] >= 3


def test_study_pays_one_trial_per_class(bench, meta: dict, tmp_path: Path) -> None:
    from robnas.search.study import Study
    from robnas.strategies import RandomSearch

    space = get_space("nb201")
    a, iso = isomorph_pair(meta)
    b = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )

    class Scripted(RandomSearch):
        """Proposes a, an isomorph of a, then b."""

        told: list = []

        def ask(self):
            return self.propose([a, iso, b][min(self.num_told, 2)])

        def _on_tell(self, genotype, score, result):
            self.told.append((genotype, result))

    ev = TabularEvaluator(bench, space, objective="clean")
    strategy = Scripted(space, seed=0, objective="clean")
    study = Study(tmp_path / "s", {"space": "nb201"}, ev, strategy)
    records = study.run(2)
    assert [r.genotype for r in records] == [a.to_str(), b.to_str()]
    assert ev.queries == 2 and ev.cache_hits == 0  # the isomorph was answered by the study
    assert strategy.told[1][0] == iso
    assert strategy.told[1][1].metrics == records[0].result.metrics
