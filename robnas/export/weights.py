"""Weights for an export: from a run's checkpoints into a spec, and back out as the "pt" payload.

Reading, checking and fitting checkpoints is robnas/checkpoint.py's (the one reader); this module
adds what only export needs: the macro size a checkpoint was trained at, a path's weights
inherited from a supernet checkpoint, and the exported checkpoint without training state.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from robnas.checkpoint import as_checkpoint, check_checkpoint, load_state
from robnas.models.resolve import ArchSpec, resolve_arch

__all__ = ["export_payload", "inherited_model", "spec_at_checkpoint_macro"]


def spec_at_checkpoint_macro(spec: ArchSpec, checkpoint: Mapping[str, Any]) -> ArchSpec:
    """`spec` at the macro size the checkpoint was trained at (if it records one)."""
    macro = checkpoint.get("macro")
    if not isinstance(macro, Mapping) or spec.genotype is None:
        return spec
    return resolve_arch(spec.genotype, spec.dataset, space=spec.space, **dict(macro))


def inherited_model(spec: ArchSpec, supernet: Mapping[str, Any], source: str) -> nn.Module:
    """`spec` with its path's weights from a supernet checkpoint (BatchNorm as left), eval mode."""
    check_checkpoint({**supernet, "arch": None}, spec, Path(source).name)
    model = spec.build()
    load_state(model, supernet["model"], source, allow_extra=True)
    return model.eval()


def export_payload(spec: ArchSpec, model: nn.Module, record: dict[str, Any]) -> dict[str, Any]:
    """The trainer's checkpoint layout minus its search/training state, plus the JSON record."""
    return as_checkpoint(
        {
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "arch": spec.label,
            "space": spec.space.name if spec.space is not None else None,
            "macro": dict(spec.macro),
            "dataset": spec.dataset,
            "architecture": record,
        }
    )
