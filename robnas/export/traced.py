"""torch.export, TorchScript and ONNX: the standalone network as `forward(images) -> logits`.

All three have a dynamic batch axis and run without robnas: `torch.export.load(path).module()`
(an ExportedProgram saved by `torch.export.save`, the format PyTorch recommends now that
TorchScript is deprecated), `torch.jit.load` (for older consumers) and onnxruntime. `verify_*`
re-runs the serialised bytes on a batch of another size and compares with the PyTorch logits, so
a wrong export is refused before anything is written.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from typing import Any

import torch
from torch import nn

from robnas.data.datasets import dataset_info
from robnas.errors import ConfigError
from robnas.models.resolve import ArchSpec

log = logging.getLogger(__name__)

ONNX_OPSET = 17
# Exported TorchScript/ONNX must reproduce the PyTorch logits to this absolute tolerance.
VERIFY_ATOL = 1e-4

__all__ = [
    "ONNX_OPSET",
    "VERIFY_ATOL",
    "Standalone",
    "example_images",
    "exported_load",
    "jit_load",
    "to_exported",
    "to_onnx",
    "to_torchscript",
    "verify_exported",
    "verify_onnx",
    "verify_torchscript",
]


class Standalone(nn.Module):
    """`forward(images) -> logits` only, so tracing never sees the optional genotype argument."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]


def example_images(spec: ArchSpec, batch: int, seed: int) -> torch.Tensor:
    """A fixed random batch in [0,1] at the spec's dataset image size."""

    size = dataset_info(spec.dataset).image_size
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g)


def to_exported(model: nn.Module, example: torch.Tensor) -> bytes:
    """The eval-mode model as a `torch.export` ExportedProgram archive (`.pt2` bytes), its batch
    axis dynamic (any batch of one or more images)."""
    wrapped = Standalone(model).eval()
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.export.export(wrapped, (example,), dynamic_shapes=({0: batch},))
    except Exception as err:  # torch.export reports what it cannot trace in many exception types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"torch.export cannot export this network ({first}); use --format torchscript or "
            f"onnx, and report this architecture as an export bug"
        ) from err
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def exported_load(source: str | io.BytesIO) -> nn.Module:
    """The module of a saved ExportedProgram: `forward(images) -> logits`, eval semantics."""
    return torch.export.load(source).module()  # type: ignore[no-any-return]


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


def jit_load(source: str | io.BytesIO, map_location: str | torch.device = "cpu") -> Any:
    """torch.jit.load without its deprecation warning (TorchScript is still the format)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
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


def verify_torchscript(data: bytes, model: nn.Module, probe: torch.Tensor) -> None:
    """ConfigError unless the TorchScript bytes give `model`'s logits on `probe`."""
    scripted = jit_load(io.BytesIO(data))
    with torch.no_grad():
        _check_close("torchscript", scripted(probe), model(probe))


def verify_exported(data: bytes, model: nn.Module, probe: torch.Tensor) -> None:
    """ConfigError unless the saved ExportedProgram gives `model`'s logits on `probe`."""
    module = exported_load(io.BytesIO(data))
    with torch.no_grad():
        _check_close("pt2", module(probe), model(probe))


def verify_onnx(data: bytes, model: nn.Module, probe: torch.Tensor) -> None:
    """ConfigError unless onnxruntime gives `model`'s logits on `probe` (skipped without it)."""
    try:
        import onnxruntime as ort
    except ImportError:  # optional dependency: export still works, the check is skipped
        log.warning("onnxruntime not installed; ONNX export not cross-checked")
        return
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": probe.numpy()})
    with torch.no_grad():
        _check_close("onnx", torch.from_numpy(logits), model(probe))
