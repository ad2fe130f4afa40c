"""Datasets as tensors in [0,1]: torchvision downloads or a local copy, seeded splits and subsets."""

from __future__ import annotations

from dataclasses import dataclass

from robnas.errors import UnknownName


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        "cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ),
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
