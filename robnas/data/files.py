"""Reading datasets from disk: image folders (decoded once, cached as uint8) and torchvision files.

Returns plain (images uint8 (N, 3, H, W), labels int64, classes) so robnas.data.datasets wraps them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import datasets

from robnas.errors import ConfigError, DataError
from robnas.io import atomic_torch_save

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 1
# torchvision's own file layout, so a user's existing download is found without copying it.
NATIVE_MARKERS = {
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
    "svhn": "train_32x32.mat",
}

Loaded = tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]


def balanced_indices(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of n examples drawn round-robin over classes in a seeded order.

    Every class gets floor or ceil of n / classes; a class that runs out leaves its share to the rest.
    """
    total = int(labels.shape[0])
    if not 0 <= n <= total:
        raise ConfigError(f"cannot take {n} examples from a set of {total}; ask for 0..{total}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=gen)
    shuffled = labels[perm]
    classes = torch.unique(labels)
    class_order = classes[torch.randperm(len(classes), generator=gen)]
    position = torch.empty(int(classes.max()) + 1, dtype=torch.long)
    position[class_order] = torch.arange(len(classes))
    # rank of each shuffled example within its class: round r of the round robin.
    order = torch.argsort(shuffled, stable=True)
    sorted_labels = shuffled[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.empty(total, dtype=torch.long)
    rank[order] = torch.arange(total) - starts
    key = rank * len(classes) + position[shuffled]
    chosen = perm[torch.argsort(key)[:n]]
    return torch.sort(chosen).values


def cache_dir() -> Path:
    env = os.environ.get("ROBNAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "robnas"


def is_image_folder(folder: Path) -> bool:
    return folder.is_dir() and any(entry.is_dir() for entry in folder.iterdir())


def list_image_folder(folder: Path) -> tuple[list[Path], torch.Tensor, tuple[str, ...]]:
    classes = tuple(sorted(entry.name for entry in folder.iterdir() if entry.is_dir()))
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        names = sorted(
            entry.name
            for entry in os.scandir(folder / cls)
            if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES)
        )
        files.extend(folder / cls / n for n in names)
        labels.extend([label] * len(names))
    return files, torch.tensor(labels, dtype=torch.int64), classes


def load_image_folder(
    folder: Path, name: str, num_classes: int, limit: int | None, seed: int
) -> Loaded:
    """Decode folder/<class>/* (only the seeded subset when limit is set), cached by content key."""
    files, labels, classes = list_image_folder(folder)
    if len(classes) != num_classes:
        raise DataError(
            f"{folder} has {len(classes)} class folders but {name} has "
            f"{num_classes}; point --data-dir at a complete copy"
        )
    if not files:
        raise DataError(f"{folder} holds no .jpg/.png images; point --data-dir at a complete copy")
    seed_part = seed if limit is not None else ""
    key = f"v{CACHE_VERSION}|{folder.resolve()}|{limit}|{seed_part}|{len(files)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / "decoded" / f"{name}-{folder.name}-{digest}.pt"
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            log.debug("decoded cache hit %s", path)
            return blob["images"], blob["labels"], tuple(blob["classes"])
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("ignoring unreadable cache %s (%s)", path, exc)
    if limit is not None:
        chosen = balanced_indices(labels, limit, seed)
        files = [files[i] for i in chosen.tolist()]
        labels = labels[chosen]
    images = _decode(files)
    atomic_torch_save(path, {"images": images, "labels": labels, "classes": list(classes)})
    log.info("decoded %d images from %s (cached at %s)", len(files), folder, path)
    return images, labels, classes


def _decode_one(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot decode image {path} ({exc}); replace or delete it") from None


def _decode(files: list[Path]) -> torch.Tensor:
    """Decode into one preallocated array; threads do not help PIL on tiny images (measured)."""
    if not files:
        return torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    first = _decode_one(files[0])
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, path in enumerate(files[1:], start=1):
        pixels = _decode_one(path)
        if pixels.shape != first.shape:
            raise DataError(
                f"image {path} is {pixels.shape[:2]}, others {first.shape[:2]}; "
                "resize them to one size"
            )
        out[i] = pixels
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def load_native(root: Path, name: str, split: str, *, download: bool) -> Loaded:
    """torchvision's CIFAR-10/100 or SVHN files under root (downloaded there if asked)."""

    train = split == "train"
    try:
        if name == "svhn":
            svhn = datasets.SVHN(str(root), split=split, download=download)
            images = torch.from_numpy(np.ascontiguousarray(svhn.data))
            labels = torch.as_tensor(svhn.labels, dtype=torch.int64)
            classes = tuple(str(i) for i in range(10))
        else:
            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            ds = cls(str(root), train=train, download=download)
            images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)
            labels = torch.as_tensor(ds.targets, dtype=torch.int64)
            classes = tuple(ds.classes)
    except (RuntimeError, OSError) as exc:
        raise DataError(
            f"cannot load {name} from {root} ({exc}); set ROBNAS_DATA or --data-dir to a local "
            f"copy{'' if download else ', or pass --download to fetch it'}"
        ) from None
    return images.contiguous(), labels, classes
