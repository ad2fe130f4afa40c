"""experiments/e2e_nb201.py on a fake `robnas search`: the user's command per seed and strategy,
the dataset read only after the search, references, resume, the time limit."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from data_helpers import DATA, needs
from experiment_helpers import load_experiment

# A stand-in for `robnas`: checks it cannot see the benchmark, then returns two fixed cells
# (which one is best depends on the seed) with the summary.json shape a search writes.
FAKE = """
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
opt = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
data = Path(os.environ["ROBNAS_DATA"])
assert (data / "cifar10").is_dir() and not (data / "nb201-robustness").exists()
assert "robnas.data.tabular" not in sys.modules
if opt["--strategy"] == "slow":
    time.sleep(30)
out = Path(opt["--out"])
out.mkdir(parents=True, exist_ok=True)
with open(out.parent / "calls.txt", "a") as f:
    f.write(" ".join(args) + "\\n")
cells = [
    "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "nb201:|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|",
]
if int(opt["--seed"]) % 2:
    cells.reverse()
top = [{"genotype": g, "metrics": {"objective": 1.0}} for g in cells]
summary = {"queries": int(opt["--trials"]), "trials": int(opt["--trials"]), "best": top[0], "top_k": top}
(out / "summary.json").write_text(json.dumps(summary))
"""


@pytest.fixture
def fake_robnas(tmp_path: Path) -> str:
    path = tmp_path / "fake_robnas.py"
    path.write_text(textwrap.dedent(FAKE))
    return f"{sys.executable} {path}"


def test_seeds_parse_ranges_and_lists(monkeypatch):
    script = load_experiment("e2e_nb201", monkeypatch)
    assert script.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert script.parse_seeds("1,3") == [1, 3]
    with pytest.raises(Exception, match="--seeds"):
        script.parse_seeds("a-b")


def test_the_command_is_the_users(monkeypatch, tmp_path):
    script = load_experiment("e2e_nb201", monkeypatch)
    argv = script.search_argv(
        ["robnas"], budget="0.6M", strategy="predictor", protocol="ranker",
        objective="fgsm@1", trials=50, seed=3, out=tmp_path,
    )  # fmt: skip
    text = " ".join(argv)
    assert text.startswith("robnas search --space nb201 --budget 0.6M --preset tiny")
    assert "--protocol ranker --objective fgsm@1 --strategy predictor --trials 50 --seed 3" in text


@needs("nb201-robustness", "cifar10")
def test_runs_each_search_then_looks_the_cells_up(monkeypatch, tmp_path, fake_robnas):
    script = load_experiment("e2e_nb201", monkeypatch)
    from robnas.data.tabular import load_benchmark
    from robnas.genotype import Genotype

    out = tmp_path / "e2e"
    argv = ["--budget", "0.6M", "--seeds", "0-1", "--out", str(out), "--trials", "7",
            "--strategies", "random,regularized_evolution", "--robnas", fake_robnas,
            "--data", str(DATA)]  # fmt: skip
    assert script.main(argv) == 0
    table = pd.read_csv(out / "e2e_nb201.csv")
    assert list(table.columns) == list(script.COLUMNS)
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert set(table["cells_scored"]) == {7} and (table["budget"] == 600_000).all()
    bench = load_benchmark(DATA / "nb201-robustness")
    for row in table.to_dict("records"):
        top = json.loads(row["top5_archs"])
        assert row["arch"] == top[0]
        truth = [bench.value(Genotype.from_str(g), "pgd@1") for g in top]
        assert row["pgd@1"] == pytest.approx(truth[0], abs=1e-6)
        assert row["top5_pgd@1"] == pytest.approx(sum(truth) / len(truth), abs=1e-6)
        assert 0.0 < row["pct_fgsm@1"] <= 1.0
    md = (out / "e2e_nb201.md").read_text()
    assert "optimum within the budget | 0.941 | 0.654 | 0.588" in md
    assert "oracle random search, 7 cells" in md and "oracle random search, 10 cells" in md
    assert "largest cell under the budget (random among 796 ties)" in md
    assert (out / "e2e_nb201.png").stat().st_size > 10_000
    calls = (out / "runs" / "calls.txt").read_text().splitlines()
    assert len(calls) == 4
    # resume: every row is there, so nothing runs again
    assert script.main(argv) == 0
    assert len((out / "runs" / "calls.txt").read_text().splitlines()) == 4


@needs("nb201-robustness", "cifar10")
def test_a_search_over_the_limit_is_stopped_and_reported(monkeypatch, tmp_path, fake_robnas):
    script = load_experiment("e2e_nb201", monkeypatch)
    out = tmp_path / "e2e"
    argv = ["--budget", "0.6M", "--seeds", "0", "--out", str(out), "--limit", "2",
            "--strategies", "slow,random", "--robnas", fake_robnas, "--data", str(DATA)]  # fmt: skip
    assert script.main(argv) == 0
    table = pd.read_csv(out / "e2e_nb201.csv").set_index("strategy")
    assert table.loc["slow", "status"] == "timeout" and table.loc["slow", "wall_s"] < 20
    assert table.loc["random", "status"] == "ok"
    assert "slow seed 0: timeout" in (out / "e2e_nb201.md").read_text()


def test_the_search_data_view_is_shared_by_runs_side_by_side(monkeypatch, tmp_path):
    # two runs into one folder both make the view; the second used to die on the existing link
    script = load_experiment("e2e_nb201", monkeypatch)
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    first = script.search_data_view(data, tmp_path / "out")
    assert script.search_data_view(data, tmp_path / "out") == first
    assert (first / "cifar10").resolve() == (data / "cifar10").resolve()
    other = tmp_path / "other"
    (other / "cifar10").mkdir(parents=True)
    with pytest.raises(SystemExit, match="points elsewhere"):
        script.search_data_view(other, tmp_path / "out")
