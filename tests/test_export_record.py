"""The JSON architecture record and robnas.load (export/record.py), incl. the pt checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from export_helpers import checkpoint, images, one_thread, tiny_spec, trained  # noqa: F401

import robnas
from robnas.errors import CheckpointError, ConfigError
from robnas.export.formats import export_arch
from robnas.export.record import load
from robnas.indicators.complexity import count_params
from robnas.models.resolve import resolve_arch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["darts", "nb201"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """JSON and pt of one tiny architecture exported from a checkpoint, once per module."""
    kind = request.param
    spec = tiny_spec(kind)
    model = trained(spec)
    root = tmp_path_factory.mktemp(f"record-{kind}")
    torch.save(checkpoint(spec, model), root / "trained.pt")
    json_path, pt_path = export_arch(spec, root / "out", "json,pt", checkpoint=root / "trained.pt")
    return {"kind": kind, "spec": spec, "model": model, "json": json_path, "pt": pt_path}


def test_json_record_and_load_builds_same_arch(exported: dict) -> None:
    spec = exported["spec"]
    record = json.loads(exported["json"].read_text())
    assert record["format"] == "robnas-architecture" and record["version"] == 1
    assert record["space"] == exported["kind"]
    assert record["genotype"] == spec.genotype.to_str()
    assert robnas.Genotype.from_dict(record["genotype_json"]) == spec.genotype
    assert record["macro"] == spec.macro and record["dataset"] == "cifar10"
    assert record["num_params"] == count_params(spec.build())
    assert record["flops"] > 0
    assert record["density"] == pytest.approx(spec.space.density(spec.genotype))
    assert record["edge_density"] == pytest.approx(spec.space.edge_density(spec.genotype))
    assert record["metrics"] == {"clean_acc": 0.61, "pgd20_acc": 0.32}
    built = robnas.load(exported["json"])
    assert type(built) is type(exported["model"])
    assert built.genotype == spec.genotype
    want = {k: v.shape for k, v in exported["model"].state_dict().items()}
    assert {k: v.shape for k, v in built.state_dict().items()} == want


def test_pt_loads_ready_model_with_same_logits(exported: dict) -> None:
    path = exported["pt"]
    raw = torch.load(path, weights_only=True)
    assert "optimizer" not in raw and "epoch" not in raw  # no training/search state
    assert raw["architecture"] == json.loads(exported["json"].read_text())
    torch.manual_seed(123)  # a fresh build would initialise differently
    model = load(path)
    assert not model.training
    x = images(5, seed=7)
    with torch.no_grad():
        assert torch.equal(model(x), exported["model"](x))


def test_baseline_json_round_trip(tmp_path: Path) -> None:
    (path,) = export_arch(resolve_arch("resnet18"), tmp_path, "json")
    record = json.loads(path.read_text())
    assert record["arch"] == "resnet18" and record["genotype"] is None
    assert record["num_params"] == 11_173_962  # torchvision-block ResNet-18, CIFAR form
    assert count_params(load(path)) == record["num_params"]


def test_load_rejects_newer_schema(tmp_path: Path) -> None:
    (path,) = export_arch(tiny_spec("nb201"), tmp_path, "json")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "version": 99}))
    with pytest.raises(ConfigError, match="version"):
        load(path)
    path.write_text(json.dumps({**record, "format": "other"}))
    with pytest.raises(ConfigError, match="not a robnas architecture"):
        load(path)


def test_load_refuses_onnx_and_a_checkpoint_without_arch(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ConfigError, match="onnxruntime"):
        load(tmp_path / "m.onnx")
    spec = tiny_spec("nb201")
    torch.save(trained(spec).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="which architecture"):
        load(tmp_path / "bare.pt")


def test_macro_genotype_record_is_strict_json_without_cell_density(tmp_path: Path) -> None:
    spec = resolve_arch("wrn:depths=2-2-2,widths=4-4-4,block=basic,act=relu,se=none")
    (path,) = export_arch(spec, tmp_path, "json")

    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in an exported record")

    record = json.loads(path.read_text(), parse_constant=no_nan)
    assert record["density"] is None and record["edge_density"] is None  # no cells to count
    assert record["num_params"] == count_params(load(path)) > 0
