"""Checkpoint weights for an export (export/weights.py): matched, fitted, sized from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from export_helpers import MACROS, NB201, checkpoint, one_thread, tiny_spec, trained  # noqa: F401
from torch import nn

from robnas.errors import CheckpointError
from robnas.export.formats import export_arch
from robnas.export.weights import fit_state_dict, read_checkpoint, spec_for_checkpoint
from robnas.models.resolve import resolve_arch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mismatched_architecture_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    spec = tiny_spec("nb201")
    ckpt = tmp_path / "a.pt"
    torch.save(checkpoint(spec, trained(spec)), ckpt)
    other = resolve_arch(
        "nb201:|skip_connect~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
        **MACROS["nb201"],
    )
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match="architecture"):
        export_arch(other, out, "json,pt", checkpoint=ckpt)
    wider = tiny_spec("nb201", C=8)
    with pytest.raises(CheckpointError, match="C=4"):
        export_arch(wider, out, "pt", checkpoint=ckpt)
    # A bare state dict says nothing about its arch: the weights themselves must fit.
    torch.save(trained(spec).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="does not match the architecture: .* unexpected"):
        export_arch(other, out, "pt", checkpoint=tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="missing"):
        export_arch(spec, out, "pt", checkpoint={"model": trained(other).state_dict()})
    assert not out.exists()


def test_read_checkpoint_wraps_a_bare_state_dict_and_refuses_others(tmp_path: Path) -> None:
    state = {"w": torch.ones(2)}
    torch.save(state, tmp_path / "bare.pt")
    assert read_checkpoint(tmp_path / "bare.pt")["model"].keys() == {"w"}
    torch.save({"epoch": 3}, tmp_path / "no_model.pt")
    with pytest.raises(CheckpointError, match="no model weights"):
        read_checkpoint(tmp_path / "no_model.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_fit_state_dict_finds_a_prefix_and_allows_extra_only_when_asked() -> None:
    model = nn.Linear(2, 3)
    state = {f"net.{k}": v.clone() for k, v in model.state_dict().items()}
    state["net.other.weight"] = torch.zeros(1)  # a supernet holds ops this path does not use
    fitted = fit_state_dict(model, state, "s.pt", allow_extra=True)
    assert fitted.keys() == model.state_dict().keys()
    assert torch.equal(fitted["weight"], state["net.weight"])
    with pytest.raises(CheckpointError, match="1 unexpected"):
        fit_state_dict(model, state, "s.pt")


def test_spec_for_checkpoint_defaults_to_checkpoint_macro() -> None:
    ckpt = {"macro": {"C": 4, "N": 1}, "dataset": "cifar100", "model": {}}
    spec = spec_for_checkpoint(NB201, ckpt)
    assert spec.macro["C"] == 4 and spec.macro["N"] == 1 and spec.dataset == "cifar100"
    spec = spec_for_checkpoint(NB201, ckpt, C=8)  # an explicit size wins (and is then checked)
    assert spec.macro["C"] == 8
