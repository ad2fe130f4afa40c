"""experiments/oneshot_rank_darts.py at a toy size: the cell choice, the CSV columns, and resume."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from robnas.models import sizing

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "oneshot_rank_darts.py"
TOY = [
    "--cells",
    "2",
    "--C",
    "4",
    "--layers",
    "3",
    "--batch-size",
    "16",
    "--cell-images",
    "16",
    "--supernet-images",
    "16",
    "--finetune-images",
    "16",
    "--held-images",
    "40",
    "--val-images",
    "8",
    "--score-images",
    "8",
    "--test-images",
    "10",
    "--test-chunk",
    "5",
    "--pgd-steps",
    "1",
]


def untimed(path: Path) -> list[dict[str, str]]:
    """The CSV rows without the timing columns (a rescored cell takes other seconds)."""
    with path.open() as f:
        return [{k: v for k, v in r.items() if "seconds" not in k} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oneshot_rank_darts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cells_span_density_with_close_pairs(script: ModuleType) -> None:
    from robnas.space.search_space import get_space

    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    cells = script.choose_cells(space, macro, 0, 12)
    assert len(cells) == 12
    assert len({space.canonical(c.genotype) for c in cells}) == 12
    names = [c.name for c in cells]
    assert {"robnet_large", "densest", "sparsest"} <= set(names)
    pairs: dict[str, list[int]] = {}
    for c in cells:
        if c.pair:
            pairs.setdefault(c.pair, []).append(sizing.num_params(space, c.genotype, macro))
    assert len(pairs) >= 4
    for a, b in pairs.values():
        assert abs(a - b) / max(a, b) < 0.05
    # the same seed picks the same cells
    again = script.choose_cells(space, macro, 0, 12)
    assert [c.genotype for c in again] == [c.genotype for c in cells]


def test_toy_run_writes_columns_and_resumes(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path
) -> None:  # data_root: skipped without the real CIFAR-10 folder
    argv = [*TOY, "--data", str(data_root), "--run", str(tmp_path / "run")]
    argv += ["--results", str(tmp_path / "res")]
    assert script.main(argv) == 0
    with (tmp_path / "res.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for key in ("genotype", "supernet_score", "standalone_pgd20", "standalone_clean", "params"):
        assert all(r[key] != "" for r in rows), key
    assert all(0.0 <= float(r["standalone_pgd20"]) <= float(r["standalone_clean"]) for r in rows)
    assert all(r["test_images"] == "10" for r in rows)  # two rounds of 5
    assert (tmp_path / "res.md").read_text().count("tau") >= 2
    first = (tmp_path / "res.csv").read_text()
    untimed_first = untimed(tmp_path / "res.csv")

    # a rerun of the same command trains and attacks nothing again
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("finished work was redone")

    monkeypatch.setattr(script, "robust_counts", refuse)
    monkeypatch.setattr(script.SupernetEvaluator, "evaluate", refuse)
    monkeypatch.setattr(script, "seeded_build", refuse)
    supernet_ckpt = tmp_path / "run" / "supernet" / "last.pt"
    stamp = supernet_ckpt.stat().st_mtime_ns
    assert script.main(argv) == 0
    assert supernet_ckpt.stat().st_mtime_ns == stamp
    assert (tmp_path / "res.csv").read_text() == first

    # a cell whose supernet score is missing is scored again, and only that
    monkeypatch.undo()
    key = script.Genotype.from_str(rows[1]["genotype"]).key
    (tmp_path / "run" / "cells" / key / "supernet.json").unlink()
    monkeypatch.setattr(script, "robust_counts", refuse)
    assert script.main(argv) == 0
    assert untimed(tmp_path / "res.csv") == untimed_first


def test_two_shards_then_the_plain_command_give_the_unsharded_table(
    script: ModuleType, tmp_path: Path, data_root: Path
) -> None:
    toy = [*TOY, "--data", str(data_root)]
    plain = [*toy, "--run", str(tmp_path / "one"), "--results", str(tmp_path / "one")]
    assert script.main(plain) == 0
    split = [*toy, "--run", str(tmp_path / "two"), "--results", str(tmp_path / "two")]
    assert script.main([*split, "--shard", "1/2", "--standalone-only"]) == 0
    assert not (tmp_path / "two" / "supernet").exists()  # left to the other shard
    assert not (tmp_path / "two.csv").exists()  # a shard writes no table
    assert script.main([*split, "--shard=0/2", "--note", "two shards"]) == 0
    assert not (tmp_path / "two.csv").exists()
    assert script.main(split) == 0  # scores the cell the standalone-only shard trained
    assert untimed(tmp_path / "two.csv") == untimed(tmp_path / "one.csv")
    assert "--shard" not in (tmp_path / "two.md").read_text()


@pytest.mark.parametrize("shard", ["2/2", "x", "1/0"])
def test_a_bad_shard_is_refused(script: ModuleType, shard: str) -> None:
    with pytest.raises(SystemExit):
        script.parse(["--shard", shard])
