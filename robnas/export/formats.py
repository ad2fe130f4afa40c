"""One architecture to files: JSON record, weights checkpoint (pt), torch.export (pt2),
TorchScript, ONNX.

- json: the versioned architecture record (`record.py`); `robnas.load` builds the untrained network.
- pt: a robnas checkpoint with the architecture and the state dict only (no optimizer, sampler or
  RNG state); `robnas.load` returns the ready network in eval mode.
- pt2 / torchscript / onnx: the standalone network (`traced.py`), checked against PyTorch; pt2
  (a `torch.export` ExportedProgram) is the one to give PyTorch users, torchscript stays for
  older consumers.

Everything is built and serialised in memory first (`render`), then written atomically, so a
mismatched checkpoint or a failed export leaves no file behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.checkpoint import model_from_checkpoint, read_checkpoint
from robnas.errors import ConfigError
from robnas.export import FORMATS, SUFFIXES, WEIGHT_FORMATS
from robnas.export.record import architecture_record
from robnas.export.traced import (
    example_images,
    to_exported,
    to_onnx,
    to_torchscript,
    verify_exported,
    verify_onnx,
    verify_torchscript,
)
from robnas.export.weights import export_payload
from robnas.io import atomic_write_bytes
from robnas.models.resolve import ArchSpec

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "WEIGHT_FORMATS",
    "default_stem",
    "export_arch",
    "export_model",
    "parse_formats",
    "render",
    "write_all",
]


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """`"json,onnx"` or a list of names -> distinct known formats, in the given order."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FORMATS:
                raise ConfigError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}")
            if name not in names:
                names.append(name)
    if not names:
        raise ConfigError(f"give at least one export format: {', '.join(FORMATS)}")
    return tuple(names)


def render(
    spec: ArchSpec,
    formats: Sequence[str],
    *,
    model: nn.Module | None = None,
    metrics: Mapping[str, Any] | None = None,
    weights: str | None = None,
    verify: bool = True,
) -> dict[str, bytes]:
    """Serialise `spec` (with `model`'s weights) in every format, in memory: format -> bytes."""
    need_weights = [f for f in formats if f in WEIGHT_FORMATS]
    if need_weights and model is None:
        raise ConfigError(
            f"{', '.join(need_weights)} export needs weights: pass --checkpoint PATH, or --format json"
        )
    record = architecture_record(spec, metrics=metrics, weights=weights if model else None)
    out: dict[str, bytes] = {}
    if "json" in formats:
        out["json"] = (json.dumps(record, indent=2) + "\n").encode()
    if model is None:
        return out
    model = model.cpu().eval()
    example, probe = example_images(spec, 2, seed=0), example_images(spec, 3, seed=1)
    if "pt" in formats:
        buffer = io.BytesIO()
        torch.save(export_payload(spec, model, record), buffer)
        out["pt"] = buffer.getvalue()
    if "pt2" in formats:
        out["pt2"] = to_exported(model, example)
        if verify:
            verify_exported(out["pt2"], model, probe)
    if "torchscript" in formats:
        out["torchscript"] = to_torchscript(model, example)
        if verify:  # a batch size other than the traced one: the batch axis must be dynamic
            verify_torchscript(out["torchscript"], model, probe)
    if "onnx" in formats:
        out["onnx"] = to_onnx(model, example)
        if verify:
            verify_onnx(out["onnx"], model, probe)
    return out


def write_all(files: Mapping[Path, bytes]) -> list[Path]:
    """Write every file atomically; returns the paths in order."""
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return list(files)


def default_stem(spec: ArchSpec) -> str:
    """A file-name stem: the published/baseline name, else `<space>-<genotype key>`."""
    if spec.genotype is None or spec.name != spec.genotype.to_str():
        return spec.name
    return f"{spec.genotype.space}-{spec.genotype.key}"


def export_model(
    spec: ArchSpec,
    out_dir: str | Path,
    formats: str | Iterable[str] = ("json",),
    *,
    model: nn.Module | None = None,
    stem: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    weights: str | None = None,
) -> list[Path]:
    """Write `spec` (and `model`'s weights) to `out_dir/<stem>.<format suffix>`; returns paths."""
    data = render(spec, parse_formats(formats), model=model, metrics=metrics, weights=weights)
    name = stem or default_stem(spec)
    return write_all({Path(out_dir) / f"{name}{SUFFIXES[f]}": b for f, b in data.items()})


def export_arch(
    spec: ArchSpec,
    out_dir: str | Path,
    formats: str | Iterable[str] = ("json",),
    *,
    checkpoint: str | Path | Mapping[str, Any] | None = None,
    source: str | None = None,
    stem: str | None = None,
) -> list[Path]:
    """Export one architecture, with a checkpoint's weights when given (checked to match).

    `checkpoint` is a path or an already read checkpoint dict (`source` names it in errors)."""
    model = None
    metrics: Mapping[str, Any] | None = None
    if checkpoint is not None:
        if isinstance(checkpoint, Mapping):
            ckpt, name = checkpoint, source or "checkpoint"
        else:
            ckpt, name = read_checkpoint(checkpoint), source or str(checkpoint)
        model = model_from_checkpoint(spec, ckpt, name)
        found = ckpt.get("metrics")
        metrics = found if isinstance(found, Mapping) else None
    return export_model(
        spec,
        out_dir,
        formats,
        model=model,
        stem=stem,
        metrics=metrics,
        weights="trained" if model is not None else None,
    )
