"""No search path reads the test split: candidates are scored on held-out training images only.

Every image read goes through robnas.data.datasets (load_dataset, then an image folder or
torchvision's files); each is wrapped to record the split it reads, a tiny supernet search and
a tabular search are run, and any read of "test" fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from search_helpers import search_settings

import robnas.data.datasets as datasets
from robnas.search.pipeline import run_search


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    load_dataset = datasets.load_dataset
    load_image_folder = datasets.load_image_folder
    load_native = datasets.load_native

    def record_load(name: str, split: str = "train", **kw: Any) -> Any:
        seen.append(split)
        return load_dataset(name, split, **kw)

    def record_folder(folder: Path, *args: Any) -> Any:
        seen.append(Path(folder).name)  # <root>/<dataset>/<split>
        return load_image_folder(folder, *args)

    def record_native(root: Path, name: str, split: str, **kw: Any) -> Any:
        seen.append(split)
        return load_native(root, name, split, **kw)

    monkeypatch.setattr(datasets, "load_dataset", record_load)
    monkeypatch.setattr(datasets, "load_image_folder", record_folder)
    monkeypatch.setattr(datasets, "load_native", record_native)
    return seen


@pytest.mark.slow  # trains a tiny supernet for one epoch (~8 CPU-minutes measured under load)
def test_supernet_search_reads_no_test_images(
    data_root: Path, tmp_path: Path, reads: list[str]
) -> None:
    settings = search_settings(
        "--space", "darts", "--strategy", "random", "--trials", "1", "--train-size", "32",
        "--val-size", "16", "--epochs", "1", "--finetune-epochs", "0", "--data-dir", str(data_root),
    )  # fmt: skip
    run_search(settings, tmp_path / "run")
    assert "train" in reads  # the recorder sees the reads it should
    assert "test" not in reads, reads


def test_tabular_search_reads_no_images(data_root: Path, tmp_path: Path, reads: list[str]) -> None:
    settings = search_settings(
        "--space", "nb201", "--strategy", "regularized_evolution", "--trials", "20",
        "--benchmark", str(data_root / "nb201-robustness"), "--objective", "fgsm@1",
    )  # fmt: skip
    run_search(settings, tmp_path / "run")
    assert reads == []
