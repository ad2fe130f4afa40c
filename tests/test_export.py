"""Export round trips (json, pt, torchscript, onnx), checkpoint mismatches, run-directory export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import robnas
from robnas.cli import main
from robnas.errors import CheckpointError, ConfigError
from robnas.export.core import SUFFIXES, export_arch, export_run, load, spec_for_checkpoint
from robnas.indicators.complexity import count_params
from robnas.models.resolve import ArchSpec, resolve_arch

# A DARTS cell with a zero node (node 2) and an edge holding two ops; an NB201 cell with a zero edge.
DARTS = (
    "darts:|sep_conv_3x3~0|none~1|+|skip_connect~0|sep_conv_3x3~1|none~2|"
    "+|none~0|none~1|none~2|none~3|+|sep_conv_3x3~0|skip_connect~1|sep_conv_3x3~1|none~2|none~3|skip_connect~4|"
)
NB201 = "nb201:|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
MACROS = {"darts": {"C": 4, "layers": 3}, "nb201": {"C": 4, "N": 1}}
ARCHS = {"darts": DARTS, "nb201": NB201}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny models: one thread avoids OpenMP contention on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _spec(kind: str, **macro: Any) -> ArchSpec:
    return resolve_arch(ARCHS[kind], **{**MACROS[kind], **macro})


def _trained(spec: ArchSpec, seed: int = 1) -> nn.Module:
    """A model whose weights and BatchNorm statistics differ from a fresh build's."""
    torch.manual_seed(seed)
    model = spec.build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.train()
        for _ in range(2):
            model(torch.rand(4, 3, 32, 32))
    return model.eval()


def _checkpoint(spec: ArchSpec, model: nn.Module, **extra: Any) -> dict[str, Any]:
    """The trainer's checkpoint layout (contracts.md), including training state export drops."""
    return {
        "format": "robnas-checkpoint",
        "version": 1,
        "model": model.state_dict(),
        "arch": spec.label,
        "space": spec.space.name if spec.space is not None else None,
        "macro": dict(spec.macro),
        "dataset": spec.dataset,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
        "epoch": 3,
        "metrics": {"clean_acc": 0.61, "pgd20_acc": 0.32},
        **extra,
    }


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=["darts", "nb201"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every format of one tiny architecture exported from a checkpoint, once per module."""
    torch.set_num_threads(1)
    kind = request.param
    spec = _spec(kind)
    model = _trained(spec)
    root = tmp_path_factory.mktemp(f"export-{kind}")
    ckpt_path = root / "trained.pt"
    torch.save(_checkpoint(spec, model), ckpt_path)
    paths = export_arch(
        spec, root / "out", ["json", "pt", "torchscript", "onnx"], checkpoint=ckpt_path
    )
    return {"kind": kind, "spec": spec, "model": model, "paths": paths}


def _path(exported: dict, fmt: str) -> Path:
    matches = [p for p in exported["paths"] if p.name.endswith(SUFFIXES[fmt])]
    (only,) = [p for p in matches if fmt != "pt" or not p.name.endswith(".torchscript.pt")]
    return only


def test_json_record_and_load_builds_same_arch(exported: dict) -> None:
    spec: ArchSpec = exported["spec"]
    record = json.loads(_path(exported, "json").read_text())
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
    built = robnas.load(_path(exported, "json"))
    assert type(built) is type(exported["model"])
    assert built.genotype == spec.genotype
    want = {k: v.shape for k, v in exported["model"].state_dict().items()}
    assert {k: v.shape for k, v in built.state_dict().items()} == want


def test_pt_loads_ready_model_with_same_logits(exported: dict) -> None:
    path = _path(exported, "pt")
    raw = torch.load(path, weights_only=True)
    assert "optimizer" not in raw and "epoch" not in raw  # no training/search state
    torch.manual_seed(123)  # a fresh build would initialise differently
    model = load(path)
    assert not model.training
    x = _images(5, seed=7)
    with torch.no_grad():
        assert torch.equal(model(x), exported["model"](x))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_same_logits_at_another_batch_size(exported: dict) -> None:
    scripted = torch.jit.load(str(_path(exported, "torchscript")))
    x = _images(5, seed=8)  # traced at batch 2: the batch axis must be dynamic
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), exported["model"](x), atol=1e-5, rtol=0)
    assert isinstance(load(_path(exported, "torchscript")), torch.jit.ScriptModule)


def test_onnx_runs_in_onnxruntime_with_same_logits(exported: dict) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = _path(exported, "onnx")
    opset = {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""]
    assert opset >= 17
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _images(5, seed=9)
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    with torch.no_grad():
        want = exported["model"](x).numpy()
    assert logits.shape == want.shape
    assert np.abs(logits - want).max() < 1e-4
    with pytest.raises(ConfigError, match="onnxruntime"):
        load(path)


def test_baseline_json_round_trip(tmp_path: Path) -> None:
    (path,) = export_arch(resolve_arch("resnet18"), tmp_path, "json")
    record = json.loads(path.read_text())
    assert record["arch"] == "resnet18" and record["genotype"] is None
    assert record["num_params"] == 11_173_962  # torchvision-block ResNet-18, CIFAR form
    assert count_params(load(path)) == record["num_params"]


def test_mismatched_architecture_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    spec = _spec("nb201")
    ckpt = tmp_path / "a.pt"
    torch.save(_checkpoint(spec, _trained(spec)), ckpt)
    other = resolve_arch(
        "nb201:|skip_connect~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
        **MACROS["nb201"],
    )
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match="architecture"):
        export_arch(other, out, "json,pt", checkpoint=ckpt)
    wider = _spec("nb201", C=8)
    with pytest.raises(CheckpointError, match="C=4"):
        export_arch(wider, out, "pt", checkpoint=ckpt)
    # A bare state dict says nothing about its arch: the weights themselves must fit.
    torch.save(_trained(spec).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="does not match the architecture: .* unexpected"):
        export_arch(other, out, "pt", checkpoint=tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="missing"):
        export_arch(spec, out, "pt", checkpoint={"model": _trained(other).state_dict()})
    assert not out.exists()


def test_cli_export_checkpoint_uses_its_macro_and_mismatch_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec("nb201")
    model = _trained(spec)
    ckpt = tmp_path / "a.pt"
    torch.save(_checkpoint(spec, model), ckpt)
    out = tmp_path / "out"
    code = main(["export", NB201, "--checkpoint", str(ckpt), "--format", "pt", "--out", str(out)])
    assert code == 0
    (path,) = out.iterdir()
    x = _images(3, seed=1)
    with torch.no_grad():
        assert torch.equal(load(path)(x), model(x))
    bad = tmp_path / "bad"
    code = main(["export", DARTS, "--checkpoint", str(ckpt), "--format", "pt", "--out", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "checkpoint" in err
    assert not bad.exists()
    code = main(["export", NB201, "--format", "onnx", "--out", str(bad)])
    assert code == 2 and "--checkpoint" in capsys.readouterr().err
    assert not bad.exists()


def test_spec_for_checkpoint_defaults_to_checkpoint_macro() -> None:
    ckpt = {"macro": {"C": 4, "N": 1}, "dataset": "cifar100", "model": {}}
    spec = spec_for_checkpoint(NB201, ckpt)
    assert spec.macro["C"] == 4 and spec.macro["N"] == 1 and spec.dataset == "cifar100"
    spec = spec_for_checkpoint(NB201, ckpt, C=8)  # an explicit size wins (and is then checked)
    assert spec.macro["C"] == 8


def test_load_rejects_newer_schema(tmp_path: Path) -> None:
    (path,) = export_arch(_spec("nb201"), tmp_path, "json")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "version": 99}))
    with pytest.raises(ConfigError, match="version"):
        load(path)


# -- study runs ------------------------------------------------------------------------------


class _SupernetLike(nn.Module):
    """The Supernet's layout: the all-ops network under `net.` (see robnas/supernet.py)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


def _make_run(root: Path, final_macro: dict, supernet_macro: dict) -> dict[str, Any]:
    """A study run directory in the contract's layout: config, summary with top_k, final/, supernet."""
    space = robnas.get_space("nb201")
    genotypes = [
        space.parse(NB201),
        space.parse(
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
        ),
        space.parse("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|"),
    ]
    root.mkdir(parents=True)
    config = {
        "space": "nb201",
        "dataset": "cifar10",
        "macro": supernet_macro,
        "final_macro": final_macro,
        "strategy": "regularized_evolution",
    }
    top_k = [
        {
            "genotype": g.to_str(),
            "metrics": {"pgd20_acc": 0.4 - 0.1 * i, "clean_acc": 0.7},
            "num_params": 1,
            "flops": 1,
            "trial": i,
        }
        for i, g in enumerate(genotypes)
    ]
    (root / "config.json").write_text(json.dumps(config))
    (root / "summary.json").write_text(json.dumps({"top_k": top_k, "best": top_k[0]}))
    # The best one has been trained at the final size.
    final_spec = resolve_arch(genotypes[0], space="nb201", **final_macro)
    final_model = _trained(final_spec, seed=2)
    (root / "final").mkdir()
    torch.save(_checkpoint(final_spec, final_model), root / "final" / f"{genotypes[0].key}.pt")
    torch.manual_seed(3)
    supernet = _SupernetLike(space.build_supernet(space.resolve_macro(**supernet_macro))).eval()
    torch.save(
        {"format": "robnas-checkpoint", "version": 1, "model": supernet.state_dict(),
         "arch": "supernet", "space": "nb201", "macro": space.resolve_macro(**supernet_macro),
         "dataset": "cifar10", "sampler": {"seed": 0}},
        root / "supernet.pt",
    )  # fmt: skip
    return {"genotypes": genotypes, "final": final_model, "supernet": supernet.net}


def test_run_export_top_k_uses_final_then_supernet_weights(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    results = export_run(tmp_path / "run", top=2, formats="json,pt,onnx")
    assert [r.rank for r in results] == [1, 2]
    assert [r.weights for r in results] == ["trained", "supernet"]
    out = tmp_path / "run" / "export"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for r in results for p in r.files)
    assert len(results[0].files) == 3 and len(results[1].files) == 3
    x = _images(4, seed=5)
    best = {p.suffix: p for p in results[0].files}
    with torch.no_grad():
        assert torch.equal(load(best[".pt"])(x), run["final"](x))
        second = load({p.suffix: p for p in results[1].files}[".pt"])
        # inherited: the same function as the supernet running that path
        assert torch.equal(second(x), run["supernet"](x, run["genotypes"][1]))
    record = json.loads(best[".json"].read_text())
    assert record["genotype"] == run["genotypes"][0].to_str()
    assert record["metrics"]["pgd20_acc"] == pytest.approx(0.4)
    assert record["macro"]["C"] == 4 and record["weights"] == "trained"
    second_record = json.loads({p.suffix: p for p in results[1].files}[".json"].read_text())
    assert second_record["macro"]["C"] == 6 and second_record["weights"] == "supernet"
    assert "supernet" in results[1].note


def test_run_export_without_weights_writes_json_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    (tmp_path / "run" / "supernet.pt").unlink()
    out = tmp_path / "out"
    code = main(["export", str(tmp_path / "run"), "--top", "3", "--format", "json,pt",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "no weights" in printed and "JSON only" in printed
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4  # top 1: json + pt (trained); top 2 and 3: json only
    assert sum(n.endswith(".json") for n in names) == 3
    # JSON-only entries still describe the architecture at the run's final macro
    record = json.loads((out / [n for n in names if n.startswith("top3")][0]).read_text())
    assert record["macro"]["C"] == 4 and record["weights"] is None


def test_run_export_bad_entry_writes_nothing(tmp_path: Path) -> None:
    _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    summary["top_k"][1]["genotype"] = "nb201:|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ConfigError, match="top_k\\[1\\]"):
        export_run(tmp_path / "run", top=2, formats="json")
    assert not (tmp_path / "run" / "export").exists()
    with pytest.raises(ConfigError, match="top_k"):
        (tmp_path / "run" / "summary.json").write_text(json.dumps({"best": None}))
        export_run(tmp_path / "run", top=1)


@pytest.mark.parametrize(
    "config",
    [
        {"space": "nb201", "macro": {"C": 6}, "final_macro": {"C": 4}},
        {"search": {"space": "nb201", "macro": {"C": 6}}, "final": {"macro": {"C": 4}}},
        {"settings": {"space": "nb201", "final_macro": {"C": 4}, "macro": {"C": 6}}},
    ],
)
def test_run_settings_prefer_the_final_macro(config: dict) -> None:
    from robnas.export.core import _run_settings

    settings = _run_settings(config, {})
    assert settings["macro"] == {"C": 4} and settings["space"] == "nb201"
