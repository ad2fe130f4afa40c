"""Command-line options several experiment scripts share (imported as a sibling module: a
script run as `python experiments/<name>.py` has this folder on its path)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_benchmark_argument(parser: argparse.ArgumentParser, flag: str = "--benchmark") -> None:
    """The NB201 robustness dataset folder: `flag DIR`, default $ROBNAS_DATA/nb201-robustness
    (required when ROBNAS_DATA is not set)."""
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        flag,
        type=Path,
        default=Path(data) / "nb201-robustness" if data else None,
        required=not data,
        help="the NB201 robustness dataset folder (default: $ROBNAS_DATA/nb201-robustness)",
    )
