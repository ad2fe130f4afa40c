"""TorchScript and ONNX export (export/traced.py): same logits at another batch size, verified."""

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
from robnas.export.traced import example_images, to_torchscript, verify_torchscript

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["darts", "nb201"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """TorchScript and ONNX of one tiny architecture, exported once per module."""
    kind = request.param
    spec = tiny_spec(kind)
    model = trained(spec)
    root = tmp_path_factory.mktemp(f"traced-{kind}")
    ckpt = checkpoint(spec, model)
    paths = export_arch(spec, root, "torchscript,onnx", checkpoint=ckpt)
    return {
        "model": model,
        **{f: p for p in paths for f in ("torchscript", "onnx") if p.name.endswith(SUFFIXES[f])},
    }


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


def test_verification_refuses_an_export_of_other_weights() -> None:
    spec = tiny_spec("nb201")
    model, other = trained(spec, seed=1), trained(spec, seed=2)
    data = to_torchscript(model, example_images(spec, 2, seed=0))
    probe = example_images(spec, 3, seed=1)
    verify_torchscript(data, model, probe)  # its own model: accepted
    with pytest.raises(ConfigError, match="torchscript export gives logits"):
        verify_torchscript(data, other, probe)
