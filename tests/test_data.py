from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from robnas.data.datasets import (
    ImageData,
    augment_batch,
    batches,
    dataset_info,
    load_dataset,
    resolve_data_dir,
    split_train_val,
)
from robnas.errors import ConfigError, DataError, UnknownName


def _toy(n_per_class: int = 7, classes: int = 3, seed: int = 0) -> ImageData:
    gen = torch.Generator().manual_seed(seed)
    n = n_per_class * classes
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=gen)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return ImageData(images, labels, tuple(f"c{i}" for i in range(classes)))


def _write_folder(root: Path, data: ImageData, split: str = "train") -> None:
    for i, (img, label) in enumerate(zip(data.images, data.labels.tolist(), strict=True)):
        folder = root / "cifar10" / split / data.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")


# --- real CIFAR-10 ---------------------------------------------------------------------------


def test_cifar10_subset_from_real_data(data_root: Path) -> None:
    data = load_dataset("cifar10", "test", data_dir=data_root, limit=200, seed=0)
    assert data.images.shape == (200, 3, 32, 32)
    assert data.images.dtype == torch.uint8 and data.labels.dtype == torch.int64
    assert data.classes == (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip
    assert torch.bincount(data.labels, minlength=10).tolist() == [20] * 10
    x = data.floats()
    assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert x.std() > 0.1  # real pictures, not a blank decode

    again = load_dataset("cifar10", "test", data_dir=data_root, limit=200, seed=0)  # cache hit
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)
    other = load_dataset("cifar10", "test", data_dir=data_root, limit=200, seed=1)
    assert not torch.equal(other.images, data.images)


def test_cache_hit_skips_decoding(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("cifar10", "train", data_dir=data_root, limit=100, seed=5)

    def fail(files: object) -> None:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr("robnas.data.files._decode", fail)
    second = load_dataset("cifar10", "train", data_dir=data_root, limit=100, seed=5)
    assert torch.equal(first.images, second.images)


def test_data_dir_from_environment(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBNAS_DATA", str(data_root))
    assert resolve_data_dir() == data_root
    assert resolve_data_dir("/elsewhere") == Path("/elsewhere")
    assert len(load_dataset("cifar10", "test", limit=30, seed=0)) == 30
    monkeypatch.delenv("ROBNAS_DATA")
    assert resolve_data_dir() is None


# --- image folders, subsets, splits ----------------------------------------------------------


def test_image_folder_roundtrip_and_limit_matches_subset(tmp_path: Path) -> None:
    toy = _toy(n_per_class=5, classes=10)
    _write_folder(tmp_path, toy)
    full = load_dataset("cifar10", "train", data_dir=tmp_path)
    assert torch.equal(full.images, toy.images)  # PNG is lossless; folder order is class, name
    assert torch.equal(full.labels, toy.labels)
    limited = load_dataset("cifar10", "train", data_dir=tmp_path, limit=23, seed=4)
    expected = full.subset(23, 4)
    assert torch.equal(limited.images, expected.images)
    assert torch.equal(limited.labels, expected.labels)


def test_subset_is_balanced_seeded_and_deterministic() -> None:
    data = _toy(n_per_class=10, classes=4)
    sub = data.subset(10, seed=3)
    counts = sorted(torch.bincount(sub.labels, minlength=4).tolist())
    assert counts == [2, 2, 3, 3]
    assert torch.equal(sub.images, data.subset(10, seed=3).images)
    assert not torch.equal(sub.images, data.subset(10, seed=4).images)
    with pytest.raises(ConfigError):
        data.subset(41, seed=0)


def test_subset_of_uneven_classes_fills_from_others() -> None:
    labels = torch.tensor([0] * 2 + [1] * 20 + [2] * 20)
    data = ImageData(torch.zeros(42, 3, 2, 2, dtype=torch.uint8), labels, ("a", "b", "c"))
    counts = torch.bincount(data.subset(30, seed=0).labels, minlength=3).tolist()
    assert counts == [2, 14, 14]


def test_split_train_val_disjoint_balanced_deterministic() -> None:
    data = _toy(n_per_class=10, classes=3)
    data.images[:, 0, 0, 0] = torch.arange(len(data))  # unique pixel: disjointness by content
    train, val = split_train_val(data, 0.2, seed=0)
    assert len(train) == 24 and len(val) == 6
    assert torch.bincount(val.labels).tolist() == [2, 2, 2]
    seen = set(train.images[:, 0, 0, 0].tolist())
    assert seen.isdisjoint(val.images[:, 0, 0, 0].tolist())
    assert len(seen) + len(val) == len(data)
    train2, val2 = split_train_val(data, 6, seed=0)
    assert torch.equal(val.images, val2.images) and torch.equal(train.images, train2.images)
    _, val3 = split_train_val(data, 6, seed=1)
    assert not torch.equal(val.images, val3.images)
    with pytest.raises(ConfigError):
        split_train_val(data, 1.5, seed=0)


# --- batches and augmentation ----------------------------------------------------------------


def test_batches_cover_data_in_order_without_shuffle() -> None:
    data = _toy(n_per_class=7, classes=3)
    out = list(batches(data, 8, shuffle=False))
    assert [len(y) for _, y in out] == [8, 8, 5]
    images = torch.cat([x for x, _ in out])
    assert images.dtype == torch.float32
    assert torch.equal(images, data.floats())
    assert [len(y) for _, y in batches(data, 8, shuffle=False, drop_last=True)] == [8, 8]


def test_shuffled_batches_are_seeded_permutations() -> None:
    data = _toy(n_per_class=7, classes=3)

    def labels(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat([y for _, y in batches(data, 5, shuffle=True, generator=gen)])

    assert torch.equal(labels(0), labels(0))
    assert not torch.equal(labels(0), labels(1))
    assert sorted(labels(0).tolist()) == sorted(data.labels.tolist())


def test_augment_is_pad_crop_flip_and_seeded() -> None:
    images = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)  # no zeros: padding is visible
    out = augment_batch(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out, augment_batch(images, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, augment_batch(images, torch.Generator().manual_seed(1)))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    used = set()
    for i in range(len(images)):
        matches = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.equal(
                out[i],
                (lambda c: c.flip(-1) if flip else c)(padded[i, :, dy : dy + 8, dx : dx + 8]),
            )
        ]
        assert matches, f"image {i} is no padded crop / flip of its source"
        used.update(matches)
    assert len({m[2] for m in used}) == 2 and len({m[:2] for m in used}) > 20


def test_augmented_batches_keep_range() -> None:
    data = _toy(n_per_class=10, classes=3)
    gen = torch.Generator().manual_seed(0)
    x, y = next(batches(data, 16, shuffle=True, generator=gen, augment=True))
    assert x.shape == (16, 3, 8, 8) and y.shape == (16,)
    assert x.min() >= 0.0 and x.max() <= 1.0


# --- errors ----------------------------------------------------------------------------------


def test_missing_data_is_a_one_line_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROBNAS_DATA", raising=False)
    monkeypatch.delenv("ROBNAS_DOWNLOAD", raising=False)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "ROBNAS_DATA" in message and "--data-dir" in message
    assert "--download" in message and "ROBNAS_DOWNLOAD=1" in message  # an option that exists
    with pytest.raises(DataError):
        load_dataset("cifar10", data_dir=tmp_path / "absent")
    with pytest.raises(DataError):
        load_dataset("cifar10")  # no local dir, nothing cached, download off


def test_unknown_names() -> None:
    with pytest.raises(UnknownName, match="cifar10"):
        load_dataset("imagenet")
    with pytest.raises(UnknownName, match="train"):
        load_dataset("cifar10", "validation")
    assert dataset_info("CIFAR10").num_classes == 10


def test_torchvision_native_files_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torchvision's CIFAR10 class stands in for its pickles (their checksums forbid fakes).
    import numpy as np
    import torchvision

    hwc = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    calls: list[tuple[str, bool, bool]] = []

    class FakeCIFAR10:
        classes = [f"k{i}" for i in range(10)]

        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            self.data = hwc
            self.targets = [i % 10 for i in range(40)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    data = load_dataset("cifar10", "test", data_dir=tmp_path, limit=20, seed=0)
    assert calls == [(str(tmp_path / "cifar10"), False, False)]
    assert data.images.shape == (20, 3, 32, 32) and data.classes[0] == "k0"
    assert torch.bincount(data.labels).tolist() == [2] * 10
    full = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert torch.equal(full.images, torch.from_numpy(hwc).permute(0, 3, 1, 2))


def test_damaged_native_files_are_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="ROBNAS_DATA"):
        load_dataset("cifar10", data_dir=tmp_path)


# --- downloading (wiring only: torchvision's dataset classes are replaced, no network) ----------


class _FakeTorchvision:
    """Records how torchvision's CIFAR10/CIFAR100/SVHN are constructed; "downloads" when asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def cls(self, name: str, marker: str) -> type:
        import numpy as np

        recorder = self

        class Fake:
            classes = [f"k{i}" for i in range(10 if name != "CIFAR100" else 100)]

            def __init__(self, root: str, download: bool, **split: object) -> None:
                recorder.calls.append((name, root, download))
                if not download and not (Path(root) / marker).exists():
                    raise RuntimeError("Dataset not found or corrupted")
                (Path(root) / marker).mkdir(parents=True, exist_ok=True)
                n = len(self.classes) * 2
                hwc = np.zeros((n, 32, 32, 3), dtype=np.uint8)
                self.data = hwc if name != "SVHN" else hwc.transpose(0, 3, 1, 2)
                self.targets = self.labels = [i % len(self.classes) for i in range(n)]

        return Fake


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _FakeTorchvision:
    import torchvision

    fake = _FakeTorchvision()
    for name, marker in (
        ("CIFAR10", "cifar-10-batches-py"),
        ("CIFAR100", "cifar-100-python"),
        ("SVHN", "train_32x32.mat"),
    ):
        monkeypatch.setattr(torchvision.datasets, name, fake.cls(name, marker))
    monkeypatch.delenv("ROBNAS_DATA", raising=False)
    monkeypatch.delenv("ROBNAS_DOWNLOAD", raising=False)
    monkeypatch.setenv("ROBNAS_CACHE", str(tmp_path / "cache"))
    return fake


@pytest.mark.parametrize(
    ("dataset", "cls"), [("cifar10", "CIFAR10"), ("cifar100", "CIFAR100"), ("svhn", "SVHN")]
)
def test_download_only_when_asked(
    fake_torchvision: _FakeTorchvision, tmp_path: Path, dataset: str, cls: str
) -> None:
    with pytest.raises(DataError, match="--download"):
        load_dataset(dataset, "train")
    assert fake_torchvision.calls == []  # never asked torchvision to fetch anything
    data = load_dataset(dataset, "train", download=True)
    cache = str(tmp_path / "cache" / "torchvision")
    assert fake_torchvision.calls == [(cls, cache, True)]
    assert len(data) == len(data.classes) * 2
    # Once cached, later loads read the copy without downloading again.
    load_dataset(dataset, "train")
    assert fake_torchvision.calls[-1] == (cls, cache, False)


@pytest.mark.parametrize(
    ("value", "asked"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_download_environment_variable(
    fake_torchvision: _FakeTorchvision, monkeypatch: pytest.MonkeyPatch, value: str, asked: bool
) -> None:
    monkeypatch.setenv("ROBNAS_DOWNLOAD", value)
    if asked:
        load_dataset("cifar10", "test")
        assert [c[2] for c in fake_torchvision.calls] == [True]
    else:
        with pytest.raises(DataError, match="--download"):
            load_dataset("cifar10", "test")
        assert fake_torchvision.calls == []
    # An explicit argument wins over the environment.
    with pytest.raises(DataError):
        load_dataset("cifar100", "test", download=False)


@pytest.mark.parametrize(
    "argv",
    [
        ["search"],
        ["train", "nb201:x", "--out", "o"],
        ["supernet", "train", "--out", "o"],
        ["evaluate", "x", "--checkpoint", "c"],
    ],
)
def test_download_flag_on_every_data_command(
    monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    from robnas.cli import build_parser
    from robnas.data.datasets import DOWNLOAD_ENV

    monkeypatch.delenv(DOWNLOAD_ENV, raising=False)
    parser = build_parser()
    assert parser.parse_args(argv).download is False
    assert DOWNLOAD_ENV not in os.environ  # parsing without the flag asks for nothing
    assert parser.parse_args([*argv, "--download"]).download is True
    assert os.environ[DOWNLOAD_ENV] == "1"  # what load_dataset reads (monkeypatch restores it)
