"""`robnas evaluate`: outputs, resume, and one-line errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from robnas.cli import main
from robnas.models.resolve import build

ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
MACRO = {"C": 4, "N": 1}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model = build(ARCH, "cifar10", **MACRO)
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    torch.save(
        {"model": model.state_dict(), "arch": ARCH, "macro": MACRO, "dataset": "cifar10"}, path
    )
    return path


def _args(ckpt: Path, data_root: Path, *extra: str) -> list[str]:
    return [
        "evaluate", ARCH, "--checkpoint", str(ckpt), "--data-dir", str(data_root),
        "--n", "20", "--batch-size", "10", "--attacks", "fgsm,pgd", "--no-checks", *extra,
    ]  # fmt: skip


def test_evaluate_writes_table_and_resumes(
    checkpoint: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(checkpoint, data_root)) == 0
    out = capsys.readouterr().out
    assert "pgd" in out and "robust_acc" in out
    csv = checkpoint.parent / "best.eval-cifar10-eps8-255.csv"
    table = pd.read_csv(csv)
    assert list(table["attack"]) == ["clean", "fgsm", "pgd", "worst_case"]
    payload = json.loads(csv.with_suffix(".json").read_text())
    assert payload["config"]["eps"] == "8/255" and "pgd_acc" in payload["metrics"]
    assert not list(checkpoint.parent.glob("*.partial.pt"))
    # A matching partial file is picked up: every unit already done => nothing recomputed.
    from robnas.evaluation import EvaluationJob

    job = EvaluationJob.prepare(
        arch=ARCH, checkpoint=checkpoint, attacks="fgsm,pgd", n=20, batch_size=10,
        data_dir=data_root, checks=False,
    )  # fmt: skip
    state = job.suite.new_state(20)
    state["clean_done"][:] = True
    state["clean_pred"][:] = job.labels  # pretend: all correct, nothing attacked yet
    job._save_partial(state)
    assert job.load_partial() is not None
    assert main(_args(checkpoint, data_root)) == 0
    assert "resuming: 2/6" in capsys.readouterr().err
    assert pd.read_csv(csv)["robust_acc"][0] == 1.0  # the saved (pretend) clean pass was used


def test_evaluate_out_dir(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert main(_args(checkpoint, data_root, "--out", str(out), "--eps", "0.5/255")) == 0
    assert (out / "best.eval-cifar10-eps0.5-255.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attacks", "fgsm,nope"], "unknown attack 'nope'"),
        (["--eps", "0"], "eps must lie in (0, 1]"),
        (["--eps", "2"], "eps must lie in (0, 1]"),
        (["--C", "8"], "was trained at C=4 (not 8)"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    checkpoint: Path,
    data_root: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    before = sorted(checkpoint.parent.iterdir())
    assert main(_args(checkpoint, data_root, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert sorted(checkpoint.parent.iterdir()) == before


def test_mismatched_or_bad_checkpoint(
    checkpoint: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = checkpoint.parent / "bare.pt"
    torch.save(build("resnet18").state_dict(), bare)
    assert main(_args(bare, data_root)) == 2
    assert "does not match the architecture" in capsys.readouterr().err
    junk = checkpoint.parent / "junk.pt"
    junk.write_text("not a checkpoint")
    assert main(_args(junk, data_root)) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
    assert main(_args(checkpoint.parent / "missing.pt", data_root)) == 2
    assert "not found" in capsys.readouterr().err
