"""`robnas rank` end to end on a small NB201 supernet checkpoint that records its split."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from data_helpers import DATA, needs

from robnas.checkpoint import image_fingerprints, read_checkpoint, save_checkpoint, split_record
from robnas.cli import main
from robnas.data.datasets import load_dataset
from robnas.models.supernet import Supernet
from robnas.ranking.run import ranking_images

pytestmark = needs("nb201-robustness")


def _checkpoint(path: Path, *, with_split: bool = True) -> Path:
    torch.manual_seed(0)
    supernet = Supernet("nb201", {"C": 4, "N": 1})
    data = load_dataset("cifar10", "train", data_dir=DATA, limit=300, seed=0)
    train, val = data.take(torch.arange(0, 250)), data.take(torch.arange(250, 300))
    payload = {
        "model": supernet.state_dict(),
        "arch": "supernet:nb201",
        "space": "nb201",
        "macro": dict(supernet.macro),
        "dataset": "cifar10",
        "kind": "supernet",
    }
    if with_split:
        payload["split"] = split_record(train, val, dataset="cifar10", seed=0)
    save_checkpoint(path, payload)
    return path


def _args(archs: int) -> list[str]:
    """`robnas rank` arguments for a quick run on the real benchmark and CIFAR-10 folder."""
    bench = str(DATA / "nb201-robustness")
    common = ["--benchmark", bench, "--archs", str(archs), "--images", "40", "--recal-batches"]
    return [*common, "1", "--batch-size", "40", "--data-dir", str(DATA), "--no-progress"]


def test_scoring_images_are_ones_the_supernet_never_trained_on(tmp_path: Path) -> None:
    ckpt_path = _checkpoint(tmp_path / "sn.pt")
    ckpt = read_checkpoint(ckpt_path, complete=True)
    data = load_dataset("cifar10", "train", data_dir=DATA, limit=600, seed=0)
    recal, heldout = ranking_images(ckpt, data, "sn.pt", images=200, recal_images=64, seed=1)
    trained = set(ckpt["split"]["train_images"].tolist())
    assert len(heldout) == 200
    assert not trained & set(image_fingerprints(heldout.images).tolist())
    assert set(image_fingerprints(recal.images).tolist()) <= trained
    with pytest.raises(Exception, match="unseen"):
        ranking_images(ckpt, data, "sn.pt", images=500, recal_images=64, seed=1)


def test_rank_cli_writes_the_table_and_refuses_a_checkpoint_without_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _args(archs=4)
    no_split = _checkpoint(tmp_path / "old.pt", with_split=False)
    assert main(["rank", str(no_split), *common, "--out", str(tmp_path / "refused")]) == 2
    assert "does not record the images" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()

    ckpt = _checkpoint(tmp_path / "sn.pt")
    out = tmp_path / "rank"
    assert main(["rank", str(ckpt), *common, "--out", str(out)]) == 0
    table = pd.read_csv(out / "cells.csv")
    assert len(table) == 4 and table["supernet_clean"].between(0, 1).all()
    assert "Test-retest" in capsys.readouterr().out
    # by default `score` is params+(supernet,naswot) (the seed study's declared rule), NASWOT
    # built at the deployed size (C=16, N=5) at initialisation on at most 128 held-out images;
    # the training-free params+naswot beside it
    assert (table["score"] == table["params+(supernet,naswot)"]).all()
    assert "params+naswot" in table
    saved = json.loads((out / "indicators.json").read_text())
    assert saved["indicators"] == ["naswot"] and saved["at"] == "init"
    assert (saved["macro"]["C"], saved["macro"]["N"], saved["images"]) == (16, 5, 128)
    summary = json.loads((out / "ranking.json").read_text())
    assert summary["score"]["name"] == "params+(supernet,naswot)"
    assert main(["rank", str(ckpt), *common, "--indicators", "nope", "--out", str(out)]) == 2


def test_rank_cli_indicators_at_initialisation_at_the_deployed_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _args(archs=3)
    ckpt = _checkpoint(tmp_path / "sn.pt")
    # refused in one line, nothing written: a size for inherited weights makes no sense, and the
    # default score needs NASWOT at initialisation
    inherited = ["--indicators-at", "inherited", "--out", str(tmp_path / "x")]
    bad_args = (["--indicator-size", "paper", "--score", "params+supernet"], [])
    for bad in (*bad_args, ["--score", "params+naswot"]):
        assert main(["rank", str(ckpt), *common, *inherited, *bad]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()
    out = tmp_path / "init"
    at = ["--indicators", "jac_norm", "--indicator-size", "C=4,N=2", "--fgsm-eps", "0"]
    assert (
        main(["rank", str(ckpt), *common, *at, "--indicator-images", "8", "--out", str(out)]) == 0
    )
    saved = json.loads((out / "indicators.json").read_text())
    assert saved["at"] == "init" and (saved["macro"]["C"], saved["macro"]["N"]) == (4, 2)
    # the score's naswot is added to the asked indicators
    assert saved["indicators"] == ["naswot", "jac_norm"] and saved["images"] == 8
    table = pd.read_csv(out / "cells.csv")
    assert {"params+(supernet,naswot)", "params+-jac_norm"} <= set(table.columns)
    assert table["supernet_fgsm"].isna().all()  # --fgsm-eps 0: no FGSM score
