"""Weights for an export: a checkpoint checked against the architecture, fitted, and written back.

A checkpoint must be of the same architecture, space, macro size and dataset as the spec it is
loaded into (each mismatch is a one-line CheckpointError that says what to pass instead); with no
size given, `spec_for_checkpoint` sizes the network from the checkpoint itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.checkpoint import FORMAT as CHECKPOINT_FORMAT
from robnas.checkpoint import VERSION as CHECKPOINT_VERSION
from robnas.errors import CheckpointError, RobnasError
from robnas.genotype import Genotype
from robnas.models.resolve import ArchSpec, resolve_arch

__all__ = [
    "check_checkpoint",
    "export_payload",
    "fit_state_dict",
    "inherited_model",
    "model_from_checkpoint",
    "read_checkpoint",
    "spec_at_checkpoint_macro",
    "spec_for_checkpoint",
]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint dict with a state dict under "model" (a bare state dict is wrapped)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} not found; pass the .pt file training wrote")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot read checkpoint {p}: {first[:160]}; pass a robnas checkpoint"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("model"), Mapping):
        return dict(data)
    if (
        isinstance(data, Mapping)
        and data
        and all(isinstance(v, torch.Tensor) for v in data.values())
    ):
        return {"model": dict(data)}
    raise CheckpointError(
        f"{p} holds no model weights (no 'model' state dict); pass a robnas checkpoint"
    )


def fit_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    allow_extra: bool = False,
) -> dict[str, torch.Tensor]:
    """The part of `state` that is exactly `model`'s state dict, or CheckpointError.

    Keys may carry a common prefix (a Supernet saves its network under `net.`). With
    `allow_extra` the checkpoint may hold more (a supernet holds every op; a path takes its own).
    """
    target = model.state_dict()
    if not target:
        return {}
    first = next(iter(target))
    prefixes = [""] + sorted(
        {k[: -len(first)] for k in state if k.endswith(first) and k != first}, key=len
    )
    best: tuple[int, str] = (-1, "")
    for prefix in prefixes:
        hits = sum(prefix + k in state for k in target)
        if hits > best[0]:
            best = (hits, prefix)
    prefix = best[1]
    missing = [k for k in target if prefix + k not in state]
    extra = [k for k in state if k.startswith(prefix) and k[len(prefix) :] not in target]
    shapes = [
        k
        for k in target
        if prefix + k in state and tuple(state[prefix + k].shape) != tuple(target[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
    if shapes:
        k = shapes[0]
        problems.append(
            f"{len(shapes)} of other shape (e.g. {k}: {tuple(state[prefix + k].shape)} "
            f"vs {tuple(target[k].shape)})"
        )
    if extra and not allow_extra:
        problems.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if problems:
        raise CheckpointError(
            f"checkpoint {source} does not match the architecture: {'; '.join(problems)}; "
            f"pass the architecture and macro size it was trained with"
        )
    return {k: state[prefix + k] for k in target}


def _same_arch(label: str, spec: ArchSpec) -> bool:
    if label.strip().lower() in (spec.name.lower(), spec.label.lower()):
        return True
    if spec.genotype is None or spec.space is None:
        return False
    try:
        return spec.space.parse(label) == spec.genotype
    except RobnasError:
        return False


def check_checkpoint(checkpoint: Mapping[str, Any], spec: ArchSpec, source: str) -> None:
    """Reject a checkpoint whose recorded architecture, macro or dataset differ from `spec`."""
    arch = checkpoint.get("arch")
    if arch is not None and not _same_arch(str(arch), spec):
        raise CheckpointError(
            f"checkpoint {source} is of architecture {str(arch)[:80]!r}, not "
            f"{spec.label[:80]!r}; export the architecture it was trained for"
        )
    space = checkpoint.get("space")
    if space is not None and spec.space is not None and str(space) != spec.space.name:
        raise CheckpointError(
            f"checkpoint {source} is of space {space!r}, not {spec.space.name!r}; "
            f"export an architecture of its space"
        )
    macro = checkpoint.get("macro")
    if isinstance(macro, Mapping) and spec.genotype is not None:
        diff = {k: v for k, v in macro.items() if k in spec.macro and spec.macro[k] != v}
        if diff:
            flags = ", ".join(f"{k}={v} (not {spec.macro[k]})" for k, v in sorted(diff.items()))
            raise CheckpointError(
                f"checkpoint {source} was trained at {flags}; pass the same macro (--C/--layers/--N/--preset)"
            )
    dataset = checkpoint.get("dataset")
    if dataset is not None and str(dataset).lower() != spec.dataset.lower():
        raise CheckpointError(
            f"checkpoint {source} is for dataset {dataset!r}, not {spec.dataset!r}; pass --dataset {dataset}"
        )


def spec_for_checkpoint(
    arch: Genotype | str,
    checkpoint: Mapping[str, Any],
    *,
    dataset: str | None = None,
    space: str | None = None,
    preset: str | None = None,
    **macro: Any,
) -> ArchSpec:
    """Resolve ARCH for a checkpoint: with no preset or macro given, the checkpoint's macro
    (and dataset) size the network, so `robnas export ARCH --checkpoint PATH` needs no flags."""
    given = {k: v for k, v in macro.items() if v is not None}
    ds = dataset or str(checkpoint.get("dataset") or "cifar10")
    spec = resolve_arch(arch, ds, space=space, preset=preset, **given)
    saved = checkpoint.get("macro")
    same_space = spec.space is not None and checkpoint.get("space") in (None, spec.space.name)
    if preset is None and not given and isinstance(saved, Mapping) and same_space:
        assert spec.space is not None
        fitting = {k: v for k, v in saved.items() if k in spec.space.macro}
        spec = resolve_arch(arch, ds, space=space, **fitting)
    return spec


def spec_at_checkpoint_macro(spec: ArchSpec, checkpoint: Mapping[str, Any]) -> ArchSpec:
    """`spec` at the macro size the checkpoint was trained at (if it records one)."""
    macro = checkpoint.get("macro")
    if not isinstance(macro, Mapping) or spec.genotype is None:
        return spec
    return resolve_arch(spec.genotype, spec.dataset, space=spec.space, **dict(macro))


def model_from_checkpoint(
    spec: ArchSpec, checkpoint: Mapping[str, Any], source: str, *, check_arch: bool = True
) -> nn.Module:
    """`spec` built with the checkpoint's weights, in eval mode; CheckpointError on mismatch."""
    if check_arch:
        check_checkpoint(checkpoint, spec, source)
    model = spec.build()
    model.load_state_dict(fit_state_dict(model, checkpoint["model"], source))
    return model.eval()


def inherited_model(spec: ArchSpec, supernet: Mapping[str, Any], source: str) -> nn.Module:
    """`spec` with the weights of its path in a supernet checkpoint (BatchNorm as left), eval mode."""
    check_checkpoint({**supernet, "arch": None}, spec, Path(source).name)
    model = spec.build()
    model.load_state_dict(fit_state_dict(model, supernet["model"], source, allow_extra=True))
    return model.eval()


def export_payload(spec: ArchSpec, model: nn.Module, record: dict[str, Any]) -> dict[str, Any]:
    """The trainer's checkpoint layout minus its search/training state, plus the JSON record."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "arch": spec.label,
        "space": spec.space.name if spec.space is not None else None,
        "macro": dict(spec.macro),
        "dataset": spec.dataset,
        "architecture": record,
    }
