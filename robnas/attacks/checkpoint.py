"""Load a trained model for evaluation: build ARCH, then load a checkpoint that must match it.

Accepts the training checkpoint format (`{"model": state_dict, "arch", "macro", "dataset"}`) or a
bare state_dict. Every mismatch is a one-line `CheckpointError` that says what to do.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.errors import CheckpointError

log = logging.getLogger(__name__)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as `{"model": state_dict, ...}` (a bare state_dict is wrapped)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass the file written by training"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}); is it a torch.save file?"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    if "model" in obj and isinstance(obj["model"], dict):
        return obj
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}
    raise CheckpointError(f"checkpoint {path} has no 'model' state_dict; keys: {sorted(obj)[:8]}")


def file_digest(path: str | Path) -> str:
    """sha256 of a file, to tie saved evaluation state to one checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(
    arch: str,
    checkpoint: str | Path,
    dataset: str = "cifar10",
    *,
    device: str | torch.device = "cpu",
    **macro: Any,
) -> nn.Module:
    """Build `arch` (with the checkpoint's macro, overridden by `macro`) and load its weights."""
    from robnas.models.resolve import build

    ckpt = read_checkpoint(checkpoint)
    saved_dataset = ckpt.get("dataset")
    if saved_dataset is not None and str(saved_dataset).lower() != dataset.lower():
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on {saved_dataset}, not {dataset}; "
            f"pass --dataset {saved_dataset}"
        )
    saved_arch = ckpt.get("arch")
    if saved_arch is not None and str(saved_arch) != arch:
        log.info("checkpoint arch %r differs in spelling from %r; weights decide", saved_arch, arch)
    merged = {**dict(ckpt.get("macro") or {}), **{k: v for k, v in macro.items() if v is not None}}
    model = build(arch, dataset, **merged)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        first = (lines[0] if lines else str(err))[:120]
        raise CheckpointError(
            f"checkpoint {checkpoint} does not match architecture {arch!r} ({first}...); "
            "pass the ARCH and macro options it was trained with"
        ) from None
    return model.to(device).eval()
