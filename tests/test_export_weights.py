"""Weights for an export (export/weights.py and the checkpoint checks it relies on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from export_helpers import MACROS, NB201, checkpoint, images, one_thread, tiny_spec, trained  # noqa: F401
from torch import nn

from robnas import models
from robnas.checkpoint import spec_for_checkpoint
from robnas.errors import CheckpointError
from robnas.export.formats import export_arch
from robnas.export.weights import export_payload, inherited_model
from robnas.models.resolve import resolve_arch

pytestmark = pytest.mark.usefixtures("one_thread")


class _SupernetLike(nn.Module):
    """The Supernet's layout: the all-ops network under `net.` (see robnas/models/supernet.py)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


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


def test_unreadable_checkpoint_is_one_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        export_arch(
            tiny_spec("nb201"), tmp_path / "out", "json,pt", checkpoint=tmp_path / "junk.pt"
        )
    assert not (tmp_path / "out").exists()


def test_inherited_model_takes_its_path_from_a_supernet_checkpoint() -> None:
    spec = tiny_spec("nb201")
    supernet = _SupernetLike(
        models.build_supernet(spec.space, spec.space.resolve_macro(**MACROS["nb201"]))
    )
    ckpt = {"model": supernet.state_dict(), "space": "nb201", "macro": dict(spec.macro)}
    model = inherited_model(spec, ckpt, "run/supernet.pt")
    x = images(3, seed=4)
    with torch.no_grad():
        assert torch.equal(model(x), supernet.eval().net(x, spec.genotype))
    wider = tiny_spec("nb201", C=8)
    with pytest.raises(CheckpointError, match="supernet.pt was trained at C=4"):
        inherited_model(wider, ckpt, "run/supernet.pt")


def test_export_payload_is_a_checkpoint_without_training_state() -> None:
    spec = tiny_spec("nb201")
    payload = export_payload(spec, trained(spec), {"format": "robnas-architecture"})
    assert payload["format"] == "robnas-checkpoint" and payload["version"] == 1
    assert payload["arch"] == spec.label and payload["macro"] == spec.macro
    assert set(payload) == {
        "format",
        "version",
        "model",
        "arch",
        "space",
        "macro",
        "dataset",
        "architecture",
    }


def test_spec_for_checkpoint_defaults_to_checkpoint_macro() -> None:
    ckpt = {"macro": {"C": 4, "N": 1}, "dataset": "cifar100", "model": {}}
    spec = spec_for_checkpoint(NB201, ckpt)
    assert spec.macro["C"] == 4 and spec.macro["N"] == 1 and spec.dataset == "cifar100"
    spec = spec_for_checkpoint(NB201, ckpt, C=8)  # an explicit size wins (and is then checked)
    assert spec.macro["C"] == 8
