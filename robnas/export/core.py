"""Export architectures for others: JSON, weight checkpoint, TorchScript, ONNX; and `load`.

- json: `{"format": "robnas-architecture", "version": 1, ...}` (genotype, space, macro, dataset,
  params, FLOPs, density, metrics); `load(path)` builds the untrained network.
- pt: a robnas checkpoint with the architecture and the state dict only (no optimizer, sampler or
  RNG state); `load(path)` returns the ready network in eval mode.
- torchscript / onnx: the standalone network traced as `forward(images) -> logits` with a dynamic
  batch axis; they run without robnas (torch.jit.load / onnxruntime). Each export is checked
  against the PyTorch model on a fresh batch before anything is written.

Everything is built and serialised in memory first, then written atomically, so a mismatched
checkpoint or a failed export leaves no file behind.
"""

from __future__ import annotations

import io
import json
import logging
import math
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robnas.errors import CheckpointError, ConfigError, RobnasError
from robnas.genotype import Genotype
from robnas.io import atomic_write_bytes
from robnas.models.resolve import ArchSpec, resolve_arch

log = logging.getLogger(__name__)

ARCH_FORMAT = "robnas-architecture"
ARCH_VERSION = 1
CHECKPOINT_FORMAT = "robnas-checkpoint"
CHECKPOINT_VERSION = 1
FORMATS = ("json", "pt", "torchscript", "onnx")
WEIGHT_FORMATS = ("pt", "torchscript", "onnx")
SUFFIXES = {"json": ".json", "pt": ".pt", "torchscript": ".torchscript.pt", "onnx": ".onnx"}
ONNX_OPSET = 17
# Exported TorchScript/ONNX must reproduce the PyTorch logits to this absolute tolerance.
VERIFY_ATOL = 1e-4

__all__ = [
    "ARCH_FORMAT",
    "ARCH_VERSION",
    "FORMATS",
    "SUFFIXES",
    "Exported",
    "Standalone",
    "architecture_record",
    "export_arch",
    "export_model",
    "export_run",
    "fit_state_dict",
    "load",
    "parse_formats",
    "read_checkpoint",
    "spec_for_checkpoint",
    "spec_from_record",
    "to_onnx",
    "to_torchscript",
]


# -- the JSON record -------------------------------------------------------------------------


def architecture_record(
    spec: ArchSpec,
    *,
    metrics: Mapping[str, Any] | None = None,
    weights: str | None = None,
) -> dict[str, Any]:
    """The versioned JSON description of an architecture; params and FLOPs are measured."""
    from robnas.data.datasets import dataset_info
    from robnas.indicators.complexity import count_flops, count_params

    size = dataset_info(spec.dataset).image_size
    with torch.device("meta"):  # sizes only: no memory, no initialisation cost
        model = spec.build()
    record: dict[str, Any] = {
        "format": ARCH_FORMAT,
        "version": ARCH_VERSION,
        "arch": spec.name,
        "space": spec.space.name if spec.space is not None else None,
        "genotype": spec.genotype.to_str() if spec.genotype is not None else None,
        "genotype_json": spec.genotype.to_dict() if spec.genotype is not None else None,
        "macro": dict(spec.macro),
        "dataset": spec.dataset,
        "num_params": count_params(model),
        "flops": count_flops(model, (1, 3, size, size)),
        "density": None,
        "edge_density": None,
        "metrics": _clean_metrics(metrics or {}),
        "weights": weights,
    }
    if spec.space is not None and spec.genotype is not None:
        record["density"] = spec.space.density(spec.genotype)
        record["edge_density"] = spec.space.edge_density(spec.genotype)
        space_file = _user_space_file(spec)
        if space_file is not None:
            record["space_file"] = space_file
    return record


def _user_space_file(spec: ArchSpec) -> str | None:
    """A user's TOML space is found again by its path; built-in spaces by name."""
    from robnas.space.search_space import space_names

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


# -- checkpoints -----------------------------------------------------------------------------


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


def model_from_checkpoint(
    spec: ArchSpec, checkpoint: Mapping[str, Any], source: str, *, check_arch: bool = True
) -> nn.Module:
    """`spec` built with the checkpoint's weights, in eval mode; CheckpointError on mismatch."""
    if check_arch:
        check_checkpoint(checkpoint, spec, source)
    model = spec.build()
    model.load_state_dict(fit_state_dict(model, checkpoint["model"], source))
    return model.eval()


# -- TorchScript and ONNX --------------------------------------------------------------------


class Standalone(nn.Module):
    """`forward(images) -> logits` only, so tracing never sees the optional genotype argument."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]


def _example(spec: ArchSpec, batch: int, seed: int) -> torch.Tensor:
    from robnas.data.datasets import dataset_info

    size = dataset_info(spec.dataset).image_size
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g)


def to_torchscript(model: nn.Module, example: torch.Tensor) -> bytes:
    """The eval-mode model traced to a TorchScript archive (bytes)."""
    wrapped = Standalone(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        # trace is deprecated upstream but remains the portable, robnas-free format
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(wrapped, (example,), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _jit_load(source: str | io.BytesIO, map_location: str | torch.device = "cpu") -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated upstream, still the format
        return torch.jit.load(source, map_location=map_location)


def to_onnx(model: nn.Module, example: torch.Tensor, opset: int = ONNX_OPSET) -> bytes:
    """The eval-mode model as ONNX: input `images` (N, 3, H, W) in [0,1], output `logits`."""
    wrapped = Standalone(model).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter needs no onnxscript and handles dynamic batch axes.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,  # type: ignore[arg-type]  # file-like objects work with the legacy exporter
            dynamo=False,
            opset_version=opset,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )
    return buffer.getvalue()


def _check_close(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    diff = float((got - want).abs().max()) if got.shape == want.shape else math.inf
    if not diff <= VERIFY_ATOL:
        raise ConfigError(
            f"{name} export gives logits {diff:.2e} away from PyTorch (tolerance {VERIFY_ATOL}); "
            f"report this architecture as an export bug"
        )


def _verify_torchscript(data: bytes, model: nn.Module, probe: torch.Tensor) -> None:
    scripted = _jit_load(io.BytesIO(data))
    with torch.no_grad():
        _check_close("torchscript", scripted(probe), model(probe))


def _verify_onnx(data: bytes, model: nn.Module, probe: torch.Tensor) -> None:
    try:
        import onnxruntime as ort
    except ImportError:  # optional dependency: export still works, the check is skipped
        log.warning("onnxruntime not installed; ONNX export not cross-checked")
        return
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": probe.numpy()})
    with torch.no_grad():
        _check_close("onnx", torch.from_numpy(logits), model(probe))


# -- exporting -------------------------------------------------------------------------------


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


def _checkpoint_dict(spec: ArchSpec, model: nn.Module, record: dict[str, Any]) -> dict[str, Any]:
    # The trainer's checkpoint layout minus its search/training state.
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
    example, probe = _example(spec, 2, seed=0), _example(spec, 3, seed=1)
    if "pt" in formats:
        buffer = io.BytesIO()
        torch.save(_checkpoint_dict(spec, model, record), buffer)
        out["pt"] = buffer.getvalue()
    if "torchscript" in formats:
        out["torchscript"] = to_torchscript(model, example)
        if verify:  # a batch size other than the traced one: the batch axis must be dynamic
            _verify_torchscript(out["torchscript"], model, probe)
    if "onnx" in formats:
        out["onnx"] = to_onnx(model, example)
        if verify:
            _verify_onnx(out["onnx"], model, probe)
    return out


def _write_all(files: Mapping[Path, bytes]) -> list[Path]:
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return list(files)


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
    return _write_all({Path(out_dir) / f"{name}{SUFFIXES[f]}": b for f, b in data.items()})


def default_stem(spec: ArchSpec) -> str:
    """A file-name stem: the published/baseline name, else `<space>-<genotype key>`."""
    if spec.genotype is None or spec.name != spec.genotype.to_str():
        return spec.name
    return f"{spec.genotype.space}-{spec.genotype.key}"


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


# -- study runs ------------------------------------------------------------------------------


@dataclass
class Exported:
    """One top-k architecture of a run: where its files went and where its weights came from."""

    rank: int
    genotype: str
    weights: str | None
    files: list[Path] = field(default_factory=list)
    note: str = ""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path} is missing; pass a study run directory (robnas search --out)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def _lookup(config: Mapping[str, Any], *keys: str) -> Any:
    """The first of `keys` (in priority order) at the top level of the config or one level down."""
    for key in keys:
        if config.get(key) is not None:
            return config[key]
        for value in config.values():
            if isinstance(value, Mapping) and value.get(key) is not None:
                return value[key]
    return None


def _run_settings(config: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**dict(summary.get("settings") or {}), **dict(config)}
    # The final (train-from-scratch) size, else the search size; `final.macro` also counts.
    final = merged.get("final")
    macro = _lookup(merged, "final_macro") or (
        final.get("macro") if isinstance(final, Mapping) else None
    )
    macro = macro or _lookup(merged, "macro")
    space = _lookup(merged, "space")
    dataset = _lookup(merged, "dataset")
    return {
        "macro": dict(macro) if isinstance(macro, Mapping) else {},
        "space": space if isinstance(space, str) else None,
        "dataset": dataset if isinstance(dataset, str) else "cifar10",
    }


def _entry_spec(entry: Mapping[str, Any], settings: Mapping[str, Any], where: str) -> ArchSpec:
    genotype = entry.get("genotype")
    if isinstance(genotype, Mapping):
        genotype = Genotype.from_dict(dict(genotype))
    if not isinstance(genotype, (str, Genotype)):
        raise ConfigError(f"{where} has no genotype string; is it a robnas summary.json?")
    try:
        return resolve_arch(
            genotype, settings["dataset"], space=settings["space"], **settings["macro"]
        )
    except RobnasError as err:
        raise ConfigError(f"{where}: {err}") from None


def export_run(
    run_dir: str | Path,
    *,
    top: int,
    formats: str | Iterable[str] = ("json",),
    out_dir: str | Path | None = None,
) -> list[Exported]:
    """Export the run's `top` best architectures (summary.json `top_k`, in its order).

    Weights come from `RUN/final/<genotype key>.pt` (the trained final network) when it exists,
    else from `RUN/supernet.pt` (inherited, at the supernet's macro size; BatchNorm statistics
    as the supernet left them), else only the JSON is written and the entry says why.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist; pass the folder a study wrote")
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    fmts = parse_formats(formats)
    config, summary = _read_json(root / "config.json"), _read_json(root / "summary.json")
    entries = summary.get("top_k")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{root / 'summary.json'} has no top_k list; let the study finish first")
    if top > len(entries):
        log.warning("run has %d top-k architectures; exporting all of them", len(entries))
    settings = _run_settings(config, summary)
    out = Path(out_dir) if out_dir is not None else root / "export"
    wanted_weights = [f for f in fmts if f in WEIGHT_FORMATS]
    supernet_ckpt: dict[str, Any] | None = None

    pending: dict[Path, bytes] = {}
    results: list[Exported] = []
    for rank, entry in enumerate(entries[:top], start=1):
        where = f"{root / 'summary.json'} top_k[{rank - 1}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be an object with a genotype")
        spec = _entry_spec(entry, settings, where)
        metrics = entry.get("metrics") if isinstance(entry.get("metrics"), Mapping) else None
        assert spec.genotype is not None
        final = root / "final" / f"{spec.genotype.key}.pt"
        model: nn.Module | None = None
        weights: str | None = None
        note = ""
        weight_spec = spec
        if wanted_weights and final.is_file():
            ckpt = read_checkpoint(final)
            weight_spec = _macro_of(spec, ckpt)
            model = model_from_checkpoint(weight_spec, ckpt, str(final))
            weights = "trained"
        elif wanted_weights and (root / "supernet.pt").is_file():
            if supernet_ckpt is None:
                supernet_ckpt = read_checkpoint(root / "supernet.pt")
            weight_spec = _macro_of(spec, supernet_ckpt)
            check_checkpoint({**supernet_ckpt, "arch": None}, weight_spec, "supernet.pt")
            model = weight_spec.build()
            model.load_state_dict(
                fit_state_dict(
                    model, supernet_ckpt["model"], str(root / "supernet.pt"), allow_extra=True
                )
            )
            model.eval()
            weights = "supernet"
            note = f"supernet-inherited weights at {_macro_text(weight_spec.macro)}"
        elif wanted_weights:
            note = (
                f"no weights (neither final/{spec.genotype.key}.pt nor supernet.pt): "
                f"wrote JSON only, skipped {', '.join(wanted_weights)}"
            )
        entry_formats = list(fmts) if model is not None else ["json"]
        data = render(weight_spec, entry_formats, model=model, metrics=metrics, weights=weights)
        stem = f"top{rank}-{spec.genotype.space}-{spec.genotype.key}"
        files = {out / f"{stem}{SUFFIXES[f]}": b for f, b in data.items()}
        pending.update(files)
        results.append(Exported(rank, spec.genotype.to_str(), weights, list(files), note))
    _write_all(pending)  # only after every entry rendered: a bad entry writes nothing
    return results


def _macro_of(spec: ArchSpec, checkpoint: Mapping[str, Any]) -> ArchSpec:
    """`spec` at the macro size the checkpoint was trained at (if it records one)."""
    macro = checkpoint.get("macro")
    if not isinstance(macro, Mapping) or spec.genotype is None:
        return spec
    return resolve_arch(spec.genotype, spec.dataset, space=spec.space, **dict(macro))


def _macro_text(macro: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in macro.items() if k in ("C", "layers", "N"))


# -- loading ---------------------------------------------------------------------------------


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The network an export describes.

    JSON record -> the built, untrained network (train mode, ready to train);
    pt checkpoint -> the network with its weights, in eval mode;
    TorchScript -> the scripted module (eval mode). ONNX files run in onnxruntime instead.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p} not found; pass a file written by `robnas export`")
    if p.suffix == ".onnx":
        raise ConfigError(
            f"{p} is ONNX: run it with onnxruntime.InferenceSession; robnas.load reads .json/.pt"
        )
    head = p.read_bytes()[:64].lstrip()
    if p.suffix == ".json" or head.startswith(b"{"):
        try:
            record = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read {p}: {err}") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{p} must hold a JSON object")
        return spec_from_record(record, str(p)).build()
    if _is_torchscript(p):
        return _jit_load(str(p), map_location).eval()  # type: ignore[no-any-return]
    ckpt = read_checkpoint(p)
    record = ckpt.get("architecture")
    if isinstance(record, Mapping):
        spec = spec_from_record(record, str(p))
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
