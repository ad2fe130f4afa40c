"""Datasets as tensors in [0,1]: torchvision downloads or a local copy, seeded splits and subsets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from robnas.data.files import (
    NATIVE_MARKERS,
    Loaded,
    balanced_indices,
    cache_dir,
    is_image_folder,
    load_image_folder,
    load_native,
)
from robnas.errors import ConfigError, DataError, UnknownName
from robnas.specs import DataSpec

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "ImageData",
    "augment_batch",
    "balanced_indices",
    "batches",
    "cache_dir",
    "dataset_info",
    "download_requested",
    "load_dataset",
    "resolve_data_dir",
    "split_train_val",
]

SPLITS = ("train", "test")
DOWNLOAD_ENV = "ROBNAS_DOWNLOAD"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo(
        "cifar100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    ),
    "svhn": DatasetInfo("svhn", 10, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise UnknownName(f"unknown dataset {name!r}; known: {known}") from None


@dataclass(frozen=True)
class ImageData:
    """A labelled image set held as uint8 (N, 3, H, W); floats() gives the model's [0,1] view."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def floats(self) -> torch.Tensor:
        return self.images.float().div_(255.0)

    def take(self, indices: torch.Tensor) -> ImageData:
        return ImageData(self.images[indices], self.labels[indices], self.classes)

    def subset(self, n: int, seed: int) -> ImageData:
        """n examples, as equal per class as the data allows, chosen by seed (order kept).

        Order kept means class by class when the data came from an image folder: never take
        the first k of a subset (that is one or two classes); take a strided slice
        (`take(torch.arange(0, n, step))`) or another `subset`."""
        return self.take(balanced_indices(self.labels, n, seed))


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The local data folder: the argument, else $ROBNAS_DATA, else None."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("ROBNAS_DATA")
    return Path(env).expanduser() if env else None


def download_requested(download: bool | None = None) -> bool:
    """The argument when given, else $ROBNAS_DOWNLOAD (1/true/yes; the CLI's --download sets it)."""
    if download is not None:
        return download
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | Path | None = None,
    download: bool | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Load a split from a local folder, else torchvision's cache (downloading only if asked).

    download: fetch CIFAR-10/100 or SVHN through torchvision into the cache when no local copy
    exists; None reads $ROBNAS_DOWNLOAD. limit keeps a seeded class-balanced subset; from an image
    folder only those files are decoded, and the result equals load_dataset(...).subset(limit, seed).
    """
    download = download_requested(download)
    info = dataset_info(name)
    if split not in SPLITS:
        raise UnknownName(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    root = resolve_data_dir(data_dir)
    if root is not None:
        if not root.is_dir():
            raise DataError(
                f"data folder {root} does not exist; point ROBNAS_DATA or --data-dir "
                "at a folder holding the dataset"
            )
        for base in (root / info.name, root):
            folder = base / split
            if is_image_folder(folder):
                return ImageData(
                    *load_image_folder(folder, info.name, info.num_classes, limit, seed)
                )
        for base in (root / info.name, root):
            if (base / NATIVE_MARKERS[info.name]).exists():
                return _limit(load_native(base, info.name, split, download=False), limit, seed)
    cached = cache_dir() / "torchvision"
    if (cached / NATIVE_MARKERS[info.name]).exists() or download:
        return _limit(load_native(cached, info.name, split, download=download), limit, seed)
    raise DataError(
        f"dataset {info.name} not found; set ROBNAS_DATA or --data-dir to a folder holding "
        f"{info.name}/{{train,test}}/<class>/*.png or torchvision's files, or pass --download "
        f"(or set {DOWNLOAD_ENV}=1) to fetch it with torchvision into {cached}"
    )


def _limit(loaded: Loaded, limit: int | None, seed: int) -> ImageData:
    data = ImageData(*loaded)
    return data if limit is None else data.subset(limit, seed)


def split_train_val(
    data: ImageData, val_size: int | float, seed: int
) -> tuple[ImageData, ImageData]:
    """Disjoint (train, val); val is class-balanced, val_size a count or a fraction in (0, 1)."""
    if isinstance(val_size, float):
        if not 0.0 < val_size < 1.0:
            raise ConfigError(f"val_size fraction must be in (0, 1), got {val_size}")
        count = round(val_size * len(data))
    else:
        count = int(val_size)
    if not 0 < count < len(data):
        raise ConfigError(f"val_size {val_size} leaves no train or no val examples of {len(data)}")
    val_idx = balanced_indices(data.labels, count, seed)
    keep = torch.ones(len(data), dtype=torch.bool)
    keep[val_idx] = False
    return data.take(keep.nonzero().squeeze(1)), data.take(val_idx)


def load_train_val(spec: DataSpec, seed: int) -> tuple[ImageData, ImageData]:
    """The one train/held-out split of every command that trains: `spec.limit` images of the
    training split (a seeded class-balanced subset; None: all of them), split into disjoint
    (train, val) with `spec.val_size` class-balanced held-out images. Never the test split."""
    if spec.val_size is None:
        raise ConfigError("give the held-out images (--val-size)")
    data = load_dataset(spec.dataset, "train", data_dir=spec.data_dir, limit=spec.limit, seed=seed)
    return split_train_val(data, spec.val_size, seed)


def augment_batch(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """CIFAR augmentation on a whole batch: random crop after 4-px zero padding, random h-flip."""
    b, c, h, w = images.shape
    pad = 4
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator)
    flip = torch.rand(b, 1, generator=generator) < 0.5
    cols = torch.arange(w).expand(b, w)
    cols = torch.where(flip, cols.flip(1), cols) + dx
    rows = torch.arange(h) + dy
    # one flat gather per batch (about 5x faster than 3-D advanced indexing on CPU)
    flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(b, 1, h * w)
    out = padded.reshape(b, c, -1).gather(2, flat.expand(b, c, h * w))
    return out.view(b, c, h, w)


def batches(
    data: ImageData,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    augment: bool = False,
    device: str | torch.device = "cpu",
    drop_last: bool = False,
    order: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images float [0,1], labels) on device; uint8 crosses to the device, floats are made there.
    `order`: the indices to serve, in that order, instead of all of `data` shuffled or not (the
    training loop draws an epoch's order itself, so a resumed epoch serves the rest of it)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if order is None:
        order = (
            torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
        )
    elif shuffle:
        raise ValueError("pass either shuffle=True or an order, not both")
    n = len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        images = data.images[idx]
        if augment:
            images = augment_batch(images, generator)
        labels = data.labels[idx]
        if cuda:
            images, labels = images.pin_memory(), labels.pin_memory()
        images = images.to(dev, non_blocking=cuda)
        labels = labels.to(dev, non_blocking=cuda)
        yield images.float().div_(255.0), labels
