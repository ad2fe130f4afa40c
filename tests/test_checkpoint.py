"""robnas.checkpoint: one format, one reader with one-line errors, one state-dict loader, and the
split a checkpoint records (a reused supernet scores only on images it never saw)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from robnas.checkpoint import (
    FORMAT,
    as_checkpoint,
    file_digest,
    image_fingerprints,
    load_checkpoint,
    load_state,
    read_checkpoint,
    save_checkpoint,
    split_record,
    unseen_images,
)
from robnas.data.datasets import ImageData, split_train_val
from robnas.errors import CheckpointError


def _small() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_save_then_read_round_trip_and_digest(tmp_path: Path) -> None:
    model = _small()
    path = tmp_path / "a" / "ckpt.pt"
    save_checkpoint(path, {"model": model.state_dict(), "arch": "x", "epoch": 2})
    data = load_checkpoint(path, "x")
    assert data["format"] == FORMAT and data["version"] == 1 and data["epoch"] == 2
    other = _small()
    load_state(other, data["model"], str(path))
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values())
    )
    assert file_digest(path) == file_digest(path) and len(file_digest(path)) == 64
    save_checkpoint(path, {"model": other.state_dict(), "arch": "x", "epoch": 3})
    assert as_checkpoint({"model": {}})["format"] == FORMAT


def test_read_errors_are_one_line_and_say_what_to_do(tmp_path: Path) -> None:
    cases = []
    with pytest.raises(CheckpointError, match="not found") as err:
        read_checkpoint(tmp_path / "missing.pt")
    cases.append(err)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .* corrupt") as err:
        read_checkpoint(junk)
    cases.append(err)
    torch.save({"format": "someone-else", "model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a robnas checkpoint") as err:
        read_checkpoint(tmp_path / "foreign.pt")
    cases.append(err)
    torch.save({**as_checkpoint({"model": {}, "arch": "x"}), "version": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="version 99") as err:
        read_checkpoint(tmp_path / "new.pt")
    cases.append(err)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state dict") as err:
        read_checkpoint(tmp_path / "list.pt")
    cases.append(err)
    save_checkpoint(tmp_path / "arch.pt", {"model": {}, "arch": "nb201:a"})
    with pytest.raises(CheckpointError, match="not nb201:b; pass the matching ARCH") as err:
        read_checkpoint(tmp_path / "arch.pt", arch="nb201:b")
    cases.append(err)
    assert all("\n" not in str(e.value) for e in cases)


def test_bare_state_dict_is_wrapped_but_not_complete(tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(_small().state_dict(), path)
    assert set(read_checkpoint(path)) == {"model"}
    with pytest.raises(CheckpointError, match="not a robnas checkpoint"):
        read_checkpoint(path, complete=True)


def test_load_state_strips_a_prefix_and_names_what_does_not_fit() -> None:
    source = _small()
    prefixed = {f"net.{k}": v for k, v in source.state_dict().items()}
    target = _small()
    load_state(target, prefixed, "sn.pt")
    assert torch.equal(target[0].weight, source[0].weight)
    wider = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5))
    with pytest.raises(
        CheckpointError, match=r"sn.pt does not match the architecture: .*other shape"
    ):
        load_state(wider, source.state_dict(), "sn.pt")
    extra = {**source.state_dict(), "head.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="1 unexpected"):
        load_state(_small(), extra, "sn.pt")
    load_state(_small(), extra, "sn.pt", allow_extra=True)  # a path of a supernet takes its own
    with pytest.raises(CheckpointError, match="weights missing"):
        load_state(_small(), {"0.weight": source[0].weight}, "sn.pt")


# -- splits --------------------------------------------------------------------------------------


def _pool(n: int = 400, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 10
    return ImageData(images, labels, tuple(str(i) for i in range(10)))


def test_fingerprints_identify_images_whatever_the_order() -> None:
    pool = _pool()
    fp = image_fingerprints(pool.images)
    assert len(set(fp.tolist())) == len(pool)  # distinct images, distinct fingerprints
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1))
    assert torch.equal(image_fingerprints(pool.images[order]), fp[order])
    a, b = split_record(pool.take(order[:200])), split_record(pool.take(order[:200].flip(0)))
    assert a["train_sha256"] == b["train_sha256"]  # a set: order-free
    assert split_record(pool.take(order[:199]))["train_sha256"] != a["train_sha256"]


def test_reused_weights_score_only_on_images_they_never_trained_on() -> None:
    pool = _pool()
    train0, val0 = split_train_val(pool, 100, seed=0)  # the supernet's split
    ckpt = {"dataset": "cifar10", "split": split_record(train0, val0, dataset="cifar10", seed=0)}
    assert ckpt["split"]["train_size"] == 300 and ckpt["split"]["val_size"] == 100
    _, val1 = split_train_val(pool, 100, seed=1)  # a search with another seed
    trained = set(image_fingerprints(train0.images).tolist())
    overlap = [f for f in image_fingerprints(val1.images).tolist() if f in trained]
    assert overlap  # the hazard is real: another seed's held-out images include training ones
    kept = unseen_images(ckpt, val1, "sn.pt", dataset="cifar10", need=len(val1) - len(overlap))
    assert len(kept) == len(val1) - len(overlap)
    assert not set(image_fingerprints(kept.images).tolist()) & trained
    # the same seed proceeds with every held-out image
    assert len(unseen_images(ckpt, val0, "sn.pt", dataset="cifar10", need=len(val0))) == len(val0)


def test_reused_weights_refuse_when_too_few_unseen_or_no_record() -> None:
    pool = _pool()
    train0, val0 = split_train_val(pool, 100, seed=0)
    ckpt = {"dataset": "cifar10", "split": split_record(train0, val0, dataset="cifar10", seed=0)}
    _, val1 = split_train_val(pool, 100, seed=1)
    with pytest.raises(
        CheckpointError, match=r"held-out images are unseen by sn.pt \(split seed 0\)"
    ):
        unseen_images(ckpt, val1, "sn.pt", dataset="cifar10", need=len(val1))
    with pytest.raises(CheckpointError, match="does not record the images it trained on"):
        unseen_images({"dataset": "cifar10"}, val1, "sn.pt", dataset="cifar10")
    with pytest.raises(CheckpointError, match="trained on cifar10, not svhn"):
        unseen_images(ckpt, val1, "sn.pt", dataset="svhn")
