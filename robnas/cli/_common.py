"""Arguments shared by every command that loads images (search, train, supernet train, evaluate)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

# robnas.data.datasets.DOWNLOAD_ENV, spelled out so parsing arguments does not import torch.
DOWNLOAD_ENV = "ROBNAS_DOWNLOAD"


class _DownloadAction(argparse.Action):
    """`--download` sets $ROBNAS_DOWNLOAD for this process, so every load_dataset call sees it
    without threading a flag through settings, configs and trainers."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        os.environ[DOWNLOAD_ENV] = "1"
        setattr(namespace, self.dest, True)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data-dir (local copy) and --download (fetch CIFAR-10/100/SVHN via torchvision)."""
    parser.add_argument("--data-dir", help="local data folder (default: $ROBNAS_DATA)")
    parser.add_argument(
        "--download",
        action=_DownloadAction,
        help=f"without a local copy, download the dataset with torchvision into the cache "
        f"(also: {DOWNLOAD_ENV}=1)",
    )
