"""A search reusing `--supernet` scores only on images the supernet never trained on, or refuses; no search path reads the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from robnas.checkpoint import image_fingerprints, save_checkpoint, split_record
from robnas.cli import main
from robnas.data.datasets import ImageData, load_dataset, split_train_val

SPACE = "nb201"
POOL0 = 2000  # the supernet's images (seed 0): 1,900 train, 100 held out


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """An (untrained) tiny supernet whose checkpoint records a seed-0 split, as training writes it."""
    from robnas.models.supernet import Supernet
    from robnas.space.search_space import get_space

    space = get_space(SPACE)
    macro = space.resolve_macro("tiny")
    data = load_dataset("cifar10", "train", data_dir=data_root, limit=POOL0, seed=0)
    train, val = split_train_val(data, 100, 0)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sn") / "supernet.pt"
    save_checkpoint(
        path,
        {
            "model": Supernet(space, macro, "cifar10").state_dict(),
            "arch": f"supernet:{SPACE}",
            "space": SPACE,
            "macro": macro,
            "dataset": "cifar10",
            "split": split_record(train, val, dataset="cifar10", seed=0, pool=POOL0),
        },
    )
    return path


def _search_val(data_root: Path, train_size: int, val_size: int, seed: int) -> ImageData:
    """The held-out split a search with these settings draws (the same calls as the search)."""
    pool = load_dataset(
        "cifar10", "train", data_dir=data_root, limit=train_size + val_size, seed=seed
    )
    return split_train_val(pool, val_size, seed)[1]


def _argv(ckpt: Path, out: Path, val_size: int, seed: int) -> list[str]:
    return [
        "search", "--space", SPACE, "--preset", "tiny", "--strategy", "random", "--trials", "1",
        "--supernet", str(ckpt), "--train-size", "32", "--val-size", str(val_size),
        "--finetune-epochs", "0", "--seed", str(seed), "--out", str(out), "--no-progress",
    ]  # fmt: skip


def _overlap(ckpt: Path, data: ImageData) -> int:
    trained = torch.load(ckpt, weights_only=True)["split"]["train_images"]
    return int(torch.isin(image_fingerprints(data.images), trained).sum())


def test_other_seed_refuses_when_too_few_held_out_images_are_unseen(
    supernet_ckpt: Path, data_root: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    # the tiny preset scores 250 images: with 250 held out, every one must be unseen
    assert _overlap(supernet_ckpt, _search_val(data_root, 32, 250, seed=1)) > 0
    run = tmp_path / "run"
    assert main(_argv(supernet_ckpt, run, 250, seed=1)) == 2
    err = capsys.readouterr().err.strip()
    assert "held-out images are unseen by" in err and "split seed 0" in err
    assert len(err.splitlines()) == 1
    assert not run.exists()  # nothing written


def test_other_seed_proceeds_on_unseen_images_and_never_reads_the_test_split(
    supernet_ckpt: Path, data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    val = _search_val(data_root, 32, 300, seed=1)
    seen = _overlap(supernet_ckpt, val)
    assert 0 < seen <= 300 - 250  # some held-out images were trained on; enough others remain

    import robnas.data.datasets as datasets
    import robnas.evaluators.supernet as supernet_evaluator

    real_load = datasets.load_dataset

    def no_test_split(name: str, split: str = "train", **kw: Any) -> ImageData:
        assert split != "test", "a search read the test split"
        return real_load(name, split, **kw)

    monkeypatch.setattr(datasets, "load_dataset", no_test_split)
    scored: list[ImageData] = []
    real_init = supernet_evaluator.SupernetEvaluator.__init__

    def spy(self: Any, supernet: Any, space: Any, train: ImageData, val: ImageData, **kw: Any):
        scored.append(val)
        real_init(self, supernet, space, train, val, **kw)

    monkeypatch.setattr(supernet_evaluator.SupernetEvaluator, "__init__", spy)
    run = tmp_path / "run"
    assert main(_argv(supernet_ckpt, run, 300, seed=1)) == 0
    (val_scored,) = scored
    assert len(val_scored) == 250
    assert _overlap(supernet_ckpt, val_scored) == 0  # disjoint from the supernet's training set
    fp = set(image_fingerprints(val_scored.images).tolist())
    assert fp <= set(image_fingerprints(val.images).tolist())  # and drawn from the held-out split
    assert json.loads((run / "summary.json").read_text())["trials"] == 1
