"""torch.export, TorchScript and ONNX export (export/traced.py): same logits at another batch
size, verified; published and baseline networks export to pt2 too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import checkpoint, images, one_thread, tiny_spec, trained  # noqa: F401

from robnas.errors import ConfigError
from robnas.export import SUFFIXES
from robnas.export.formats import export_arch
from robnas.export.record import load
from robnas.export.traced import (
    example_images,
    to_exported,
    to_torchscript,
    verify_exported,
    verify_torchscript,
)
from robnas.models.resolve import resolve_arch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["darts", "nb201"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """pt2, TorchScript and ONNX of one tiny architecture, exported once per module."""
    kind = request.param
    spec = tiny_spec(kind)
    model = trained(spec)
    root = tmp_path_factory.mktemp(f"traced-{kind}")
    ckpt = checkpoint(spec, model)
    paths = export_arch(spec, root, "pt2,torchscript,onnx", checkpoint=ckpt)
    formats = ("pt2", "torchscript", "onnx")
    return {
        "model": model,
        **{f: p for p in paths for f in formats if p.name.endswith(SUFFIXES[f])},
    }


def test_pt2_loads_with_torch_alone_and_gives_the_logits_at_any_batch(exported: dict) -> None:
    path: Path = exported["pt2"]
    assert path.name.endswith(".pt2")
    module = torch.export.load(str(path)).module()  # what a consumer without robnas runs
    for n in (1, 5):  # exported at batch 2: the batch axis is dynamic from 1 up
        x = images(n, seed=10 + n)
        with torch.no_grad():
            torch.testing.assert_close(module(x), exported["model"](x), atol=1e-5, rtol=0)
    loaded = load(path)  # robnas.load reads it too
    x = images(3, seed=20)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), exported["model"](x), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_same_logits_at_another_batch_size(exported: dict) -> None:
    scripted = torch.jit.load(str(exported["torchscript"]))
    x = images(5, seed=8)  # traced at batch 2: the batch axis must be dynamic
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), exported["model"](x), atol=1e-5, rtol=0)
    assert isinstance(load(exported["torchscript"]), torch.jit.ScriptModule)


def test_onnx_runs_in_onnxruntime_with_same_logits(exported: dict) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path: Path = exported["onnx"]
    opset = {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""]
    assert opset >= 17
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images(5, seed=9)
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    with torch.no_grad():
        want = exported["model"](x).numpy()
    assert logits.shape == want.shape
    assert np.abs(logits - want).max() < 1e-4
    with pytest.raises(ConfigError, match="onnxruntime"):
        load(path)


@pytest.mark.parametrize(
    ("name", "to_bytes", "verify"),
    [("torchscript", to_torchscript, verify_torchscript), ("pt2", to_exported, verify_exported)],
)
def test_verification_refuses_an_export_of_other_weights(name, to_bytes, verify) -> None:
    spec = tiny_spec("nb201")
    model, other = trained(spec, seed=1), trained(spec, seed=2)
    data = to_bytes(model, example_images(spec, 2, seed=0))
    probe = example_images(spec, 3, seed=1)
    verify(data, model, probe)  # its own model: accepted
    with pytest.raises(ConfigError, match=f"{name} export gives logits"):
        verify(data, other, probe)


def test_an_unexportable_network_is_a_one_line_config_error() -> None:
    class DataDependent(torch.nn.Module):  # control flow on a value: torch.export cannot trace it
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(ConfigError, match="torch.export cannot export this network") as info:
        to_exported(DataDependent(), images(2, seed=0))
    assert "\n" not in str(info.value) and "torchscript" in str(info.value)


@pytest.mark.parametrize(
    ("name", "macro"),
    [
        ("resnet18", {}),
        pytest.param("robnet_large", {"C": 4, "layers": 3}, marks=pytest.mark.slow),
    ],
)
def test_published_and_baseline_networks_export_to_pt2(
    name: str, macro: dict, tmp_path: Path
) -> None:
    spec = resolve_arch(name, **macro)
    torch.manual_seed(0)
    model = spec.build().eval()
    (path,) = export_arch(spec, tmp_path, "pt2", checkpoint=checkpoint(spec, model))
    x = images(2, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(load(path)(x), model(x), atol=1e-5, rtol=0)
