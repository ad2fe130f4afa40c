"""Export a study run's top-k architectures, with the best weights the run holds for each.

Weights come from `RUN/final/<genotype key>.pt` (the trained final network) when it exists, else
from `RUN/supernet.pt` (inherited, at the supernet's macro size; BatchNorm statistics as the
supernet left them), else only the JSON record is written and the entry says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from robnas.checkpoint import model_from_checkpoint, read_checkpoint
from robnas.errors import ConfigError, RobnasError
from robnas.export import SUFFIXES, WEIGHT_FORMATS
from robnas.export.formats import parse_formats, render, write_all
from robnas.export.weights import inherited_model, spec_at_checkpoint_macro
from robnas.genotype import Genotype
from robnas.models.resolve import ArchSpec, resolve_arch
from robnas.search.rundir import RunDir
from robnas.search.settings import SearchSettings

log = logging.getLogger(__name__)

__all__ = ["Exported", "export_run"]


@dataclass
class Exported:
    """One top-k architecture of a run: where its files went and where its weights came from."""

    rank: int
    genotype: str
    weights: str | None
    files: list[Path] = field(default_factory=list)
    note: str = ""


def _entry_spec(entry: Mapping[str, Any], settings: SearchSettings, where: str) -> ArchSpec:
    """The entry's genotype at the run's final (deployed) size."""
    genotype = entry.get("genotype")
    if isinstance(genotype, Mapping):
        genotype = Genotype.from_dict(dict(genotype))
    if not isinstance(genotype, (str, Genotype)):
        raise ConfigError(f"{where} has no genotype string; is it a robnas summary.json?")
    try:
        return resolve_arch(
            genotype, settings.dataset, space=settings.space, **settings.final_macro
        )
    except RobnasError as err:
        raise ConfigError(f"{where}: {err}") from None


def _macro_text(macro: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in macro.items() if k in ("C", "layers", "N"))


def export_run(
    run_dir: str | Path,
    *,
    top: int,
    formats: str | Iterable[str] = ("json",),
    out_dir: str | Path | None = None,
) -> list[Exported]:
    """Export the run's `top` best architectures (summary.json `top_k`, in its order)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist; pass the folder a study wrote")
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    fmts = parse_formats(formats)
    run = RunDir(root)
    settings, summary = run.read_settings(), run.read_summary()
    entries = summary.get("top_k")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{root / 'summary.json'} has no top_k list; let the study finish first")
    if top > len(entries):
        log.warning("run has %d top-k architectures; exporting all of them", len(entries))
    out = Path(out_dir) if out_dir is not None else root / "export"
    wanted_weights = [f for f in fmts if f in WEIGHT_FORMATS]
    final_dir, supernet_path = run.path / "final", run.path / "supernet.pt"
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
        final = final_dir / f"{spec.genotype.key}.pt"
        model: nn.Module | None = None
        weights: str | None = None
        note = ""
        weight_spec = spec
        if wanted_weights and final.is_file():
            ckpt = read_checkpoint(final)
            weight_spec = spec_at_checkpoint_macro(spec, ckpt)
            model = model_from_checkpoint(weight_spec, ckpt, str(final))
            weights = "trained"
        elif wanted_weights and supernet_path.is_file():
            if supernet_ckpt is None:
                supernet_ckpt = read_checkpoint(supernet_path)
            weight_spec = spec_at_checkpoint_macro(spec, supernet_ckpt)
            model = inherited_model(weight_spec, supernet_ckpt, str(supernet_path))
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
    write_all(pending)  # only after every entry rendered: a bad entry writes nothing
    return results
