"""The same-parameter-count study on the real NB201 robustness dataset, and a tabular run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_helpers import needs

from robnas.analysis.nb201 import SameParamsStudy, same_params_study, same_params_tables
from robnas.analysis.report import analyze
from robnas.data.tabular import load_benchmark
from robnas.evaluators.tabular import TabularEvaluator
from robnas.models import sizing
from robnas.search.rundir import RunDir
from robnas.search.settings import TabularSettings
from robnas.space.search_space import get_space

# Counted directly from meta.json (see test_count_matches_raw_metadata): evaluated architectures
# whose own cell has exactly two nor_conv_3x3 and no nor_conv_1x1.
SAME_PARAMS_COUNT = 405

pytestmark = needs("nb201-robustness")


@pytest.fixture(scope="module")
def bench_dir(data_root: Path) -> Path:
    return data_root / "nb201-robustness"


@pytest.fixture(scope="module")
def study(bench_dir: Path) -> SameParamsStudy:
    return same_params_study(bench_dir)


def test_count_matches_raw_metadata(bench_dir: Path, study: SameParamsStudy) -> None:
    ids = json.loads((bench_dir / "meta.json").read_text())["ids"]
    raw = [
        k
        for k, v in ids.items()
        if v["isomorph"] == k
        and v["nb201-string"].count("nor_conv_3x3") == 2
        and "nor_conv_1x1" not in v["nb201-string"]
    ]
    assert len(raw) == SAME_PARAMS_COUNT == study.n
    assert sorted(study.table["id"]) == sorted(int(k) for k in raw)


def test_same_parameter_count_and_spread(bench_dir: Path, study: SameParamsStudy) -> None:
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    params = {sizing.num_params(space, space.parse(a), macro) for a in study.table["arch"]}
    assert len(params) == 1  # the premise: one parameter count for all of them
    low, high = study.spread
    assert 15 < low < high < 50 and high - low > 10  # the paper: 20% to 41%
    values = study.table["mean_adv_acc"].to_numpy()
    assert np.all(np.diff(values) <= 0)  # best first
    # recompute the best one's mean from the raw attack files (31 values, FGSM 255/255 excluded)
    best = str(study.table["id"].iloc[0])
    meta = json.loads((bench_dir / "meta.json").read_text())
    raw = []
    for attack in ("fgsm", "pgd", "aa_apgd-ce", "aa_square"):
        key = f"{attack}@Linf"
        acc = json.loads((bench_dir / "cifar10" / f"{key}_accuracy.json").read_text())
        values_ = acc["cifar10"][key]["accuracy"][best]
        raw += [v for e, v in zip(meta["epsilons"][key], values_, strict=True) if e != 255]
    assert len(raw) == 31
    assert study.table["mean_adv_acc"].iloc[0] == pytest.approx(100 * np.mean(raw))


def test_edge_usage_and_tables(study: SameParamsStudy) -> None:
    assert study.edge_usage["share_all"].sum() == pytest.approx(2.0)  # two conv edges each
    assert study.edge_usage["share_top"].sum() == pytest.approx(2.0)
    assert study.pairs["count"].sum() == study.n and len(study.pairs) <= 15
    text = "\n".join(same_params_tables(study))
    assert f"n={study.n}" in text and study.table["arch"].iloc[0].replace("|", "\\|") in text


def test_tabular_run_report_has_same_params_section(bench_dir: Path, tmp_path: Path) -> None:
    space = get_space("nb201")
    evaluator = TabularEvaluator(load_benchmark(bench_dir), space, objective="pgd@1")
    rng = np.random.default_rng(0)
    rows = []
    for t in range(40):
        g = space.sample(rng)
        r = evaluator.evaluate(g)
        rows.append(
            {
                "trial": t,
                "genotype": g.to_str(),
                "status": "ok",
                "num_params": r.num_params,
                "seconds": r.seconds,
                **r.metrics,
                "density": space.density(g),
                "edge_density": space.edge_density(g),
            }
        )
    run = tmp_path / "run"
    settings = TabularSettings(
        space="nb201",
        strategy="random",
        objective="pgd@1",
        direction="maximize",
        trials=40,
        preset="tiny",
        benchmark=str(bench_dir),
    )
    RunDir(run).init(settings)
    pd.DataFrame(rows).to_csv(run / "trials.csv", index=False)
    result = analyze(run, n_boot=200)  # the dataset is found through the settings' benchmark
    assert result.robust_key == "pgd@1"
    report = result.report.read_text()
    assert "Same parameter count on the NB201 robustness dataset" in report
    assert f"n={SAME_PARAMS_COUNT}" in report and "finding 3 cannot be tested here" in report
    assert len(pd.read_csv(result.out_dir / "same_params.csv")) == SAME_PARAMS_COUNT
    assert (result.out_dir / "same_params.png").stat().st_size > 0
    indicators = set(pd.read_csv(result.out_dir / "indicator_kendall.csv").indicator)
    assert {"clean", "fgsm@1", "aa_square@1", "density"} <= indicators
