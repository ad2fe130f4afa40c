"""benchmarks/bench_search.py --quick runs every phase and protocol and ends with its JSON line.
No timing is asserted: only that the keys are there and the measured values are positive."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_search.py"


def test_quick_bench_prints_the_phases_and_one_json_line(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("bench_search", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_search", bench)  # dataclasses look it up there
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        bench.main(["--quick", "--threads", "1", "--data-dir", str(data_root)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("cpu: ") and out[1].startswith("flags: ")
    result = json.loads(out[-1])
    for key in ("cpu", "supernet_steps_per_s", "candidate_s", "cells_per_minute", "torch"):
        assert key in result
    assert result["cpu"] and result["threads"] == 1
    for key in (
        "supernet_steps_per_s",
        "candidate_s",
        "candidate_cpu_s",
        "attack_s",
        "data_load_s",
    ):
        assert result[key] > 0, key
    protocols = result["cells_per_minute"]
    assert set(protocols) == {*bench.PROTOCOLS.names(), "nb201_ranker"}  # quick: no lowfi
    assert {"finetune_pgd20", "inherited_pgd20", "prescreen_jac_norm"} <= set(protocols)
    assert all(v > 0 for v in protocols.values())
    costs = result["estimator"]  # robnas.estimate's constants, measured
    assert set(costs) == {"adv_over_clean", "dense_extra", "validation_steps", "candidate_steps"}
    assert costs["adv_over_clean"] > 0 and costs["candidate_steps"] > 0
    assert set(result["estimator_wall"]) == set(costs)  # the same ratios in wall seconds
    assert result["estimator_wall"]["candidate_steps"] > 0
