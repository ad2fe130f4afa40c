"""`robnas search --protocol ranker | lowfi`: NB201 cells scored by a protocol that matches the
robustness dataset, ranked by the declared objective, and the benchmark never read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_helpers import DATA, needs

from robnas.cli import main
from robnas.objectives.protocols import objective
from robnas.search.settings import ProtocolSettings, settings_from_json

CHILD = """
import json, sys
from robnas.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith(("robnas.data.tabular", "robnas.analysis",
                                                         "robnas.search.tabular")))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _search(out: Path, *extra: str) -> list[str]:
    return [
        "search", "--space", "nb201", "--budget", "0.6M", "--preset", "tiny", "--out", str(out),
        "--no-progress", *extra,
    ]  # fmt: skip


@needs("cifar10")
def test_a_ranker_search_runs_on_cifar10_alone_and_never_loads_the_benchmark(tmp_path):
    view = tmp_path / "data"  # CIFAR-10 and nothing else: no benchmark to read
    view.mkdir()
    (view / "cifar10").symlink_to(DATA / "cifar10", target_is_directory=True)
    out = tmp_path / "run"
    args = _search(out, "--protocol", "ranker", "--objective", "pgd@1", "--trials", "3")
    env = {**os.environ, "ROBNAS_DATA": str(view), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert "3 cells scored" in done.stdout and "per CPU-minute" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "protocol" and summary["queries"] == 3
    assert summary["objective"]["key"] == "objective"
    for e in summary["top_k"]:
        assert e["num_params"] <= 600_000
        m = e["metrics"]
        assert m["objective"] == pytest.approx(objective("ranker", "pgd@1", m, e["num_params"]))
        assert m["cpu_s"] > 0
    values = [e["metrics"]["objective"] for e in summary["top_k"]]
    assert values == sorted(values, reverse=True)
    settings = settings_from_json((out / "config.json").read_text())
    assert isinstance(settings, ProtocolSettings)
    assert (settings.protocol, settings.target, settings.fidelity) == ("ranker", "pgd@1", None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "ranker", "--objective", "pgd20_acc"], "known: clean, fgsm@1, pgd@1"),
        (["--protocol", "lowfi", "--method", "pgd"], "--method do not apply to --protocol lowfi"),
        (["--protocol", "ranker", "--benchmark", "x"], "drop one of the two"),
        (["--protocol", "ranker", "--space", "darts"], "search darts with its supernet"),
    ],
)
def test_bad_protocol_requests_fail_in_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert main(_search(out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_settings_round_trip_and_refuse_what_does_not_fit():
    s = ProtocolSettings(
        space="nb201", strategy="random", objective="objective", trials=5, preset="tiny",
        protocol="lowfi", target="clean", fidelity="3epoch-4k",
    )  # fmt: skip
    assert settings_from_json(s.to_json()) == s
    from robnas.errors import ConfigError

    with pytest.raises(ConfigError, match="fidelity"):
        s.replace(protocol="ranker")
    with pytest.raises(ConfigError, match="maximises the metric 'objective'"):
        s.replace(objective="clean_acc")


@needs("cifar10")
def test_the_supernet_protocol_trains_normally_and_attacks_at_1_255():
    from robnas.cli import build_parser
    from robnas.cli.search import request_of
    from robnas.search.pipeline import resolve_settings

    parser = build_parser()
    base = ["search", "--space", "nb201", "--budget", "0.6M", "--protocol", "supernet"]
    s = resolve_settings(request_of(parser.parse_args(base)))
    assert (s.mode, s.objective, s.train.method, str(s.eps)) == (
        "supernet",
        "fgsm_acc",
        "clean",
        "1/255",
    )
    s = resolve_settings(request_of(parser.parse_args([*base, "--objective", "pgd@1"])))
    assert s.attack.name == "pgd" and str(s.eps) == "1/255"


@needs("cifar10")
def test_each_protocol_scores_as_many_cells_by_default_as_fit_a_few_minutes():
    # the tiny preset's 10 candidates are what its supernet protocol affords; the free ranker
    # scores 300 cells by default, the low-fidelity protocol 30; --trials always wins
    from robnas.cli import build_parser
    from robnas.cli.search import request_of
    from robnas.search.pipeline import resolve_settings

    parser = build_parser()
    base = ["search", "--space", "nb201", "--budget", "0.6M"]  # the tiny preset by default
    trials = {
        p: resolve_settings(request_of(parser.parse_args([*base, "--protocol", p]))).trials
        for p in ("ranker", "lowfi", "supernet")
    }
    assert trials == {"ranker": 300, "lowfi": 30, "supernet": 10}
    given = parser.parse_args([*base, "--protocol", "ranker", "--trials", "7"])
    assert resolve_settings(request_of(given)).trials == 7
