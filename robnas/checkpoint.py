"""Training checkpoints: one dict written atomically, read back with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from robnas.errors import CheckpointError
from robnas.io import atomic_torch_save

FORMAT = "robnas-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "model", "arch")


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    atomic_torch_save(path, {"format": FORMAT, "version": VERSION, **payload})


def load_checkpoint(
    path: str | os.PathLike[str], expected_arch: str | None = None, *, map_location: str = "cpu"
) -> dict[str, Any]:
    """Read a robnas checkpoint; CheckpointError (one line) if missing, corrupt or for another arch."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} not found; check the path or the run's --out")
    try:
        data = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {file} is corrupt or not a torch file ({type(err).__name__}); "
            "delete it or use another run"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a robnas checkpoint (no format={FORMAT!r} field)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {file} lacks {', '.join(missing)}; it is incomplete")
    if data["version"] != VERSION:
        raise CheckpointError(
            f"checkpoint {file} has version {data['version']}; this robnas reads version {VERSION}"
        )
    if expected_arch is not None and data["arch"] != expected_arch:
        raise CheckpointError(
            f"checkpoint {file} is for {_short(data['arch'])}, not {_short(expected_arch)}; "
            "pass the matching ARCH or another checkpoint"
        )
    return data


def load_model_state(model: torch.nn.Module, state: dict[str, Any], where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0][:120]
        raise CheckpointError(
            f"{where} does not fit this model ({detail[:160]}); check ARCH, --space and macro options"
        ) from None


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
