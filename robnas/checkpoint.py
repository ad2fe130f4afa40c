"""Checkpoints: the one format, its reader and writer, and the one friendly state-dict loader.

A checkpoint is a dict saved with torch.save: `{"format": FORMAT, "version": VERSION, "model":
state_dict, "arch", "space", "macro", "dataset", "split", ...}`; the trainer adds its own state
(optimizer, scheduler, sampler, RNG, history), and a checkpoint written inside an epoch adds
`in_epoch` (the step within the epoch, the epoch's data order, its partial statistics; see
robnas.training.loop). Checkpoints without these fields (older ones) still load. `read_checkpoint`
also accepts a bare state dict (wrapped as `{"model": ...}`). Every problem is a
`CheckpointError` of one line that says what to do.

`split` records which images the weights trained on (see `split_record`), so a search that reuses
the weights can score only on images they never saw (`unseen_images`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from robnas.errors import CheckpointError, RobnasError
from robnas.io import atomic_torch_save
from robnas.models.resolve import resolve_arch
from robnas.specs import Size

if TYPE_CHECKING:
    from robnas.data.datasets import ImageData
    from robnas.genotype import Genotype
    from robnas.models.resolve import ArchSpec

FORMAT = "robnas-checkpoint"
VERSION = 1
#: What a complete checkpoint (one training can resume from or a search can reuse) must hold.
REQUIRED = ("format", "version", "model", "arch")

__all__ = [
    "FORMAT",
    "VERSION",
    "as_checkpoint",
    "check_checkpoint",
    "file_digest",
    "load_checkpoint",
    "load_state",
    "model_from_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "spec_for_checkpoint",
    "split_record",
    "unseen_images",
]


# -- format, writing and reading ---------------------------------------------------------------


def as_checkpoint(payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` stamped with the format and version (for writers that serialise in memory)."""
    return {**dict(payload), "format": FORMAT, "version": VERSION}


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write `payload` as a robnas checkpoint, atomically (readers never see half a file)."""
    atomic_torch_save(path, as_checkpoint(payload))


def read_checkpoint(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    complete: bool = False,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """The checkpoint at `path` as a dict with a state dict under "model".

    A bare state dict is wrapped. `complete` demands a full robnas checkpoint (format, version,
    model, arch); `arch` demands that exact recorded architecture label.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} not found; pass the .pt file training wrote")
    try:
        data = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        detail = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise CheckpointError(
            f"cannot read checkpoint {file}: corrupt or not a torch file "
            f"({type(err).__name__}{': ' + detail if detail else ''}); pass a robnas checkpoint"
        ) from None
    if (
        isinstance(data, Mapping)
        and data
        and all(isinstance(v, torch.Tensor) for v in data.values())
    ):
        data = {"model": dict(data)}
    if not isinstance(data, Mapping):
        raise CheckpointError(f"checkpoint {file} holds a {type(data).__name__}, not a state dict")
    data = dict(data)
    if "format" in data or complete:
        _check_format(data, file)
    if not isinstance(data.get("model"), Mapping):
        raise CheckpointError(
            f"{file} holds no model weights (no 'model' state dict); pass a robnas checkpoint"
        )
    if arch is not None and data.get("arch") != arch:
        raise CheckpointError(
            f"checkpoint {file} is for {_short(str(data.get('arch')))}, not {_short(arch)}; "
            "pass the matching ARCH or another checkpoint"
        )
    return data


def load_checkpoint(
    path: str | os.PathLike[str],
    expected_arch: str | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """A complete robnas checkpoint (what training resumes from and a search reuses)."""
    return read_checkpoint(path, arch=expected_arch, complete=True, map_location=map_location)


def _check_format(data: dict[str, Any], file: Path) -> None:
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a robnas checkpoint (no format={FORMAT!r} field)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {file} lacks {', '.join(missing)}; it is incomplete")
    if data["version"] != VERSION:
        raise CheckpointError(
            f"checkpoint {file} has version {data['version']}; this robnas reads version {VERSION}"
        )


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, to tie saved state (e.g. a partial evaluation) to one checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# -- state dicts -------------------------------------------------------------------------------


def load_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    allow_extra: bool = False,
) -> None:
    """Load `state` into `model`, or raise one CheckpointError naming what does not fit.

    Keys may carry a common prefix (a Supernet saves its network under `net.`). With
    `allow_extra` the state may hold more (a supernet holds every op; a path takes its own).
    """
    target = model.state_dict()
    if not target:
        return
    first = next(iter(target))
    prefixes = [""] + sorted(
        {k[: -len(first)] for k in state if k.endswith(first) and k != first}, key=len
    )
    prefix = max(prefixes, key=lambda p: sum(p + k in state for k in target))
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
            "pass the ARCH and macro size (--space/--size/--C/--layers/--N) it was trained with"
        )
    model.load_state_dict({k: state[prefix + k] for k in target})


# -- architectures -----------------------------------------------------------------------------


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
    """Reject a checkpoint whose recorded architecture, space, macro or dataset differ from `spec`."""
    arch = checkpoint.get("arch")
    if arch is not None and not _same_arch(str(arch), spec):
        raise CheckpointError(
            f"checkpoint {source} is of architecture {str(arch)[:80]!r}, not "
            f"{spec.label[:80]!r}; pass the architecture it was trained for"
        )
    space = checkpoint.get("space")
    if space is not None and spec.space is not None and str(space) != spec.space.name:
        raise CheckpointError(
            f"checkpoint {source} is of space {space!r}, not {spec.space.name!r}; "
            "pass an architecture of its space"
        )
    macro = checkpoint.get("macro")
    if isinstance(macro, Mapping) and spec.genotype is not None:
        diff = {k: v for k, v in macro.items() if k in spec.macro and spec.macro[k] != v}
        if diff:
            flags = ", ".join(f"{k}={v} (not {spec.macro[k]})" for k, v in sorted(diff.items()))
            raise CheckpointError(
                f"checkpoint {source} was trained at {flags}; "
                "pass the same macro (--size/--C/--layers/--N)"
            )
    dataset = checkpoint.get("dataset")
    if dataset is not None and str(dataset).lower() != spec.dataset.lower():
        raise CheckpointError(
            f"checkpoint {source} is for dataset {dataset!r}, not {spec.dataset!r}; "
            f"pass --dataset {dataset}"
        )


def spec_for_checkpoint(
    arch: Genotype | str,
    checkpoint: Mapping[str, Any],
    *,
    dataset: str | None = None,
    space: str | None = None,
    size: Size | None = None,
    **macro: Any,
) -> ArchSpec:
    """Resolve ARCH for a checkpoint. Unless a size is named, the checkpoint's macro (and
    dataset) size the network and the given counts and macro options override it, so
    `ARCH --checkpoint PATH` needs no flags; a mismatch is then caught by `check_checkpoint`."""

    ds = dataset or str(checkpoint.get("dataset") or "cifar10")
    spec = resolve_arch(arch, ds, space=space, size=size, **macro)
    saved = checkpoint.get("macro")
    same_space = spec.space is not None and checkpoint.get("space") in (None, spec.space.name)
    if (size is None or size.name is None) and isinstance(saved, Mapping) and same_space:
        assert spec.space is not None
        fitting = {k: v for k, v in saved.items() if k in spec.space.macro}
        base = {**spec.space.macro, **fitting}
        spec = resolve_arch(arch, ds, space=space, size=size, base=base, **macro)
    return spec


def model_from_checkpoint(
    spec: ArchSpec, checkpoint: Mapping[str, Any], source: str, *, check_arch: bool = True
) -> nn.Module:
    """`spec` built with the checkpoint's weights, in eval mode; CheckpointError on mismatch."""
    if check_arch:
        check_checkpoint(checkpoint, spec, source)
    model = spec.build()
    load_state(model, checkpoint["model"], source)
    return model.eval()


# -- splits ------------------------------------------------------------------------------------


def image_fingerprints(images: torch.Tensor) -> torch.Tensor:
    """One 63-bit content hash per uint8 image: the same image hashes alike whichever loader,
    subset or order produced it, so sets of images compare without their indices."""
    flat = images.detach().cpu().contiguous().reshape(images.shape[0], -1).numpy()
    values = [
        int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little") >> 1
        for row in flat
    ]
    return torch.tensor(values, dtype=torch.int64)


def _set_digest(fingerprints: torch.Tensor) -> str:
    return hashlib.sha256(torch.unique(fingerprints).numpy().tobytes()).hexdigest()


def split_record(train: ImageData, val: ImageData | None = None, **meta: Any) -> dict[str, Any]:
    """What weights trained on, for their checkpoint: sizes, order-free hashes of the training
    and held-out image sets, the training images' fingerprints, and `meta` (dataset, split seed,
    pool size) so a reader can tell which split it was."""
    train_fp = image_fingerprints(train.images)
    record: dict[str, Any] = {
        **meta,
        "train_size": len(train),
        "train_sha256": _set_digest(train_fp),
        "train_images": train_fp,
    }
    if val is not None:
        record["val_size"] = len(val)
        record["val_sha256"] = _set_digest(image_fingerprints(val.images))
    return record


def unseen_images(
    checkpoint: Mapping[str, Any], data: ImageData, source: str, *, dataset: str, need: int = 1
) -> ImageData:
    """`data` without the images `checkpoint`'s weights trained on (order kept).

    Refuses (CheckpointError) a checkpoint that does not record its split, that trained on
    another dataset, or that leaves fewer than `need` unseen images.
    """
    split = checkpoint.get("split")
    if not isinstance(split, Mapping) or not isinstance(split.get("train_images"), torch.Tensor):
        raise CheckpointError(
            f"{source} does not record the images it trained on, so scoring cannot avoid them; "
            "train a new supernet (robnas search without --supernet, or robnas supernet train)"
        )
    trained_on = str(split.get("dataset") or checkpoint.get("dataset") or "")
    if trained_on and trained_on.lower() != dataset.lower():
        raise CheckpointError(
            f"{source} trained on {trained_on}, not {dataset}; pass --dataset {trained_on}"
        )
    seen = torch.isin(image_fingerprints(data.images), split["train_images"])
    kept = data.take((~seen).nonzero().squeeze(1))
    if len(kept) < need:
        seed = f" (split seed {split['seed']})" if "seed" in split else ""
        raise CheckpointError(
            f"only {len(kept)} of {len(data)} held-out images are unseen by {source}{seed}, "
            f"{need} needed; search with the supernet's --seed, a smaller --score-size, "
            "or without --supernet"
        )
    return kept
