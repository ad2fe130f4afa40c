"""The versioned JSON record of an architecture, and `load`: any export file back to a network.

A record is `{"format": "robnas-architecture", "version": 1, ...}` with the genotype, space,
macro, dataset, measured params and FLOPs, density and metrics; `spec_from_record` rebuilds its
ArchSpec. `load(path)` reads every format robnas writes except ONNX (which runs in onnxruntime).
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.checkpoint import model_from_checkpoint, read_checkpoint
from robnas.data.datasets import dataset_info
from robnas.errors import CheckpointError, ConfigError
from robnas.export.traced import exported_load, jit_load
from robnas.genotype import Genotype
from robnas.indicators.complexity import count_flops, count_params
from robnas.io import read_json_object
from robnas.models.resolve import ArchSpec, resolve_arch
from robnas.space.cell import CellSpace
from robnas.space.search_space import space_names

ARCH_FORMAT = "robnas-architecture"
ARCH_VERSION = 1

__all__ = [
    "ARCH_FORMAT",
    "ARCH_VERSION",
    "architecture_record",
    "describe",
    "load",
    "spec_from_record",
]


def describe(spec: ArchSpec) -> dict[str, Any]:
    """What an architecture is and costs (`robnas arch info` prints it; records hold it): name,
    genotype, dataset, macro, parameters, FLOPs at the dataset's image size, and the density and
    edge density of a cell genotype (None for baselines and macro spaces, which have no cells)."""
    size = dataset_info(spec.dataset).image_size
    with torch.device("meta"):  # sizes only: no memory, no initialisation cost
        model = spec.build()
    density = edge_density = None
    if isinstance(spec.space, CellSpace) and spec.genotype is not None:
        density = spec.space.density(spec.genotype)
        edge_density = spec.space.edge_density(spec.genotype)
    return {
        "arch": spec.name,
        "genotype": spec.genotype.to_str() if spec.genotype is not None else None,
        "dataset": spec.dataset,
        "macro": dict(spec.macro),
        "num_params": count_params(model),
        "flops": count_flops(model, (1, 3, size, size)),
        "density": density,
        "edge_density": edge_density,
    }


def architecture_record(
    spec: ArchSpec,
    *,
    metrics: Mapping[str, Any] | None = None,
    weights: str | None = None,
) -> dict[str, Any]:
    """The versioned JSON description of an architecture; params and FLOPs are measured."""
    facts = describe(spec)
    record: dict[str, Any] = {
        "format": ARCH_FORMAT,
        "version": ARCH_VERSION,
        "arch": facts["arch"],
        "space": spec.space.name if spec.space is not None else None,
        "genotype": facts["genotype"],
        "genotype_json": spec.genotype.to_dict() if spec.genotype is not None else None,
        **{k: facts[k] for k in ("macro", "dataset", "num_params", "flops")},
        "density": facts["density"],
        "edge_density": facts["edge_density"],
        "metrics": _clean_metrics(metrics or {}),
        "weights": weights,
    }
    if spec.space is not None and spec.genotype is not None:
        space_file = _user_space_file(spec)
        if space_file is not None:
            record["space_file"] = space_file
    return record


def _user_space_file(spec: ArchSpec) -> str | None:
    """A user's TOML space is found again by its path; built-in spaces by name."""
    assert spec.space is not None
    if spec.space.name in space_names():
        return None
    return str(Path(spec.space.source).resolve())


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    # JSON has no NaN; a missing measurement is null.
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = number if math.isfinite(number) else None
    return out


def spec_from_record(record: Mapping[str, Any], source: str = "record") -> ArchSpec:
    """Rebuild the ArchSpec of a JSON record (checks format and version)."""
    if record.get("format") != ARCH_FORMAT:
        raise ConfigError(
            f"{source} is not a robnas architecture (format {record.get('format')!r}); "
            f"export one with `robnas export`"
        )
    version = record.get("version")
    if not isinstance(version, int) or version > ARCH_VERSION:
        raise ConfigError(
            f"{source} has architecture schema version {version!r}; this robnas reads up to "
            f"{ARCH_VERSION}: upgrade robnas"
        )
    dataset = str(record.get("dataset") or "cifar10")
    macro = {k: v for k, v in dict(record.get("macro") or {}).items() if v is not None}
    if record.get("genotype_json") or record.get("genotype"):
        genotype = (
            Genotype.from_dict(record["genotype_json"])
            if record.get("genotype_json")
            else Genotype.from_str(str(record["genotype"]))
        )
        space = record.get("space_file") or genotype.space
        return resolve_arch(genotype, dataset, space=space, **macro)
    if not record.get("arch"):
        raise ConfigError(f"{source} names neither a genotype nor an architecture")
    return resolve_arch(str(record["arch"]), dataset, **macro)


def _is_exported_program(path: Path) -> bool:
    """A `torch.export.save` archive (.pt2): a zip with an `archive_format` entry."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/archive_format") for n in archive.namelist())


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The network an export describes.

    JSON record -> the built, untrained network (train mode, ready to train);
    pt checkpoint -> the network with its weights, in eval mode;
    pt2 -> the ExportedProgram's module (`torch.export.load(path).module()`, eval semantics);
    TorchScript -> the scripted module (eval mode). ONNX files run in onnxruntime instead.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p} not found; pass a file written by `robnas export`")
    if p.suffix == ".onnx":
        raise ConfigError(
            f"{p} is ONNX: run it with onnxruntime.InferenceSession; robnas.load reads "
            f".json/.pt/.pt2/.torchscript.pt"
        )
    head = p.read_bytes()[:64].lstrip()
    if p.suffix == ".json" or head.startswith(b"{"):
        record = read_json_object(p, hint="pass a file written by `robnas export`")
        return spec_from_record(record, str(p)).build()
    if _is_exported_program(p):
        return exported_load(str(p)).to(map_location)
    if _is_torchscript(p):
        return jit_load(str(p), map_location).eval()  # type: ignore[no-any-return]
    ckpt = read_checkpoint(p)
    saved = ckpt.get("architecture")
    if isinstance(saved, Mapping):
        spec = spec_from_record(saved, str(p))
    elif ckpt.get("arch"):
        spec = resolve_arch(
            str(ckpt["arch"]),
            str(ckpt.get("dataset") or "cifar10"),
            space=ckpt.get("space"),
            **{k: v for k, v in dict(ckpt.get("macro") or {}).items() if v is not None},
        )
    else:
        raise CheckpointError(f"{p} does not say which architecture it holds; cannot rebuild it")
    model = model_from_checkpoint(spec, ckpt, str(p))
    return model.to(map_location)
