"""Tabular NB201 robustness benchmark: values, isomorphs, keys, cache, query counting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robnas.data import tabular
from robnas.errors import DataError, InvalidGenotype, UnknownName
from robnas.genotype import Genotype
from robnas.space.search_space import get_space


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


def test_evaluator_counts_distinct_queries(bench) -> None:
    space = get_space("nb201")
    ev = tabular.TabularEvaluator(bench, space, objective="fgsm@1")
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    r1 = ev.evaluate(a)
    ev.evaluate(a)
    ev.evaluate(b)
    assert (ev.queries, ev.cache_hits) == (2, 1)
    assert set(r1.metrics) == set(tabular.REPORT_KEYS)
    assert r1.num_params == space.num_params(a, space.resolve_macro("paper"))
    ev.reset()
    assert ev.queries == 0


def test_evaluator_rejects_other_spaces_and_free_cells(bench) -> None:
    with pytest.raises(InvalidGenotype, match="nb201"):
        tabular.TabularEvaluator(bench, get_space("darts"), objective="clean")
    space = get_space("nb201")
    ev = tabular.TabularEvaluator(bench, space, objective="clean")
    free = space.sample(np.random.default_rng(0), free=True)
    with pytest.raises(InvalidGenotype, match="shared"):
        ev.evaluate(free)


def test_canonical_form_reproduces_the_isomorph_classes(bench, meta: dict) -> None:
    from robnas.strategies.surrogate import canonical

    space = get_space("nb201")
    rows: dict[str, set[int]] = {}
    for entry in meta["ids"].values():
        g = Genotype.from_str(entry["nb201-string"], "nb201")
        rows.setdefault(canonical(space, g), set()).add(bench.row_of(g))
    assert len(rows) == bench.num_unique == 6466
    assert all(len(r) == 1 for r in rows.values())
