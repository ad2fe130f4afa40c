"""Arguments shared by several commands, and the values they become (parsed once, here).

`add_data_arguments`: --data-dir and --download, for every command that loads images.
`add_size_arguments`: --size, --preset and the count flags, for every command that builds a
network; `size_of(args)` is the one resolver of what they say: `--size` (a name of the space's
`[sizes]`, counts, or both), the count flags on top, else the preset's default size.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from robnas.specs import DataSpec, Size, size_from

# robnas.data.datasets.DOWNLOAD_ENV, spelled out so parsing arguments does not import torch.
DOWNLOAD_ENV = "ROBNAS_DOWNLOAD"
PRESET_HELP = "tiny (CPU minutes), small or paper (RobNet): training schedule, data sizes, candidate protocol and default sizes"
SIZE_HELP = "network size: a size name of the space (tiny, small, paper), counts like C=16,layers=8 or C=16,N=5, or both (tiny,C=12); default: the preset's size"


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


def add_size_arguments(parser: argparse.ArgumentParser, *, dataset: bool = True) -> None:
    """--size, --preset and the count flags that size a network of a space (and --dataset)."""
    if dataset:
        parser.add_argument("--dataset", default="cifar10", help="dataset the network is sized for")
    parser.add_argument("--preset", help=PRESET_HELP)
    parser.add_argument("--size", help=SIZE_HELP)
    parser.add_argument("--C", dest="C", type=int, help="initial channels (on top of --size)")
    parser.add_argument("--layers", type=int, help="cells in the network (darts family)")
    parser.add_argument("--N", dest="N", type=int, help="cells per stage (nb201 family)")


def size_of(args: argparse.Namespace) -> Size | None:
    """The size a command builds at: `--size`, the count flags on top, else the preset's
    default size (used where the space has it); None: the network's own default."""
    preset = getattr(args, "preset", None)
    default = preset.default_size("size") if preset is not None else None
    text = getattr(args, "size", None)
    counts = {k: getattr(args, k, None) for k in ("C", "layers", "N")}
    return size_from(Size.parse(text) if text else default, **counts)


def data_spec(args: argparse.Namespace, dataset: str) -> DataSpec:
    """--data-dir, --train-size and --val-size as one DataSpec (sizes None: not given)."""
    return DataSpec(
        dataset, args.data_dir, getattr(args, "train_size", None), getattr(args, "val_size", None)
    )
