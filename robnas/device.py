"""The device policy: which device, and whether bf16 autocast, channels_last and torch.compile.

One place decides, so training, finetune and evaluators agree and every switch can be forced on
in a CPU test. Defaults:

- `resolve_device("auto")` picks CUDA when present, else the CPU; `"cuda"` without a GPU is a
  `DeviceError` (one line; the CLI exits 2).
- bf16 autocast (training steps only; robustness evaluation stays fp32): on for CUDA, off on a
  CPU unless asked (`robnas train --bf16`). AMX-BF16 tiles make it pay only for some networks:
  on a 2-core Xeon with AMX, an FGSM-RS step (batch 128, channels_last, one thread;
  benchmarks/bench_train.py --only bf16 --step fgsm-rs --batch 128, `bf16_over_fp32`) took
  1.15x the fp32 time on the tiny darts net (the main job's: bf16 slower), 0.92x on darts at
  C=16/8 layers and 0.78x on NB201 at C=16/N=5. Off by default, since the net that every user
  runs first gets slower and the precision is lost everywhere; `--bf16` takes the gain where it
  is. On an AVX512-BF16 Xeon without AMX a clean step took 1.01x; PGD steps have been
  reported 2.6-10x slower on an AVX2-only CPU (not measured here).
- channels_last: on for CUDA (tensor cores want NHWC) and the CPU (oneDNN's NHWC convolutions:
  a supernet step 1.14-1.18x faster on the tiny darts net, 1.74x on an NB201 C=8 net, this
  2-core AMD EPYC; 1.22x on an AVX2-only EPYC; benchmarks/bench_train.py --only channels_last,
  `contiguous_over_channels_last`). Off for MPS (not measured).
- compile: off unless asked (`--compile`): the first steps pay the compilation, which only a run
  of more than a few minutes earns back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robnas.errors import ConfigError
from robnas.models.network import CellDAG
from robnas.models.supernet import Supernet

__all__ = [
    "DeviceError",
    "DevicePolicy",
    "cpu_bf16_flags",
    "device_policy",
    "resolve_device",
]

log = logging.getLogger(__name__)

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


class DeviceError(ConfigError):
    """A device that this machine does not have, or an unknown device name."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` (or None) -> CUDA if present else CPU; `cuda`/`cuda:N` need that GPU."""
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(
            f"unknown device {name!r}; use one of {', '.join(DEVICE_NAMES)} (or cuda:N)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {name}: no CUDA GPU is visible here; use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {name!r}; use one of {', '.join(DEVICE_NAMES)}")
    return device


@functools.cache
def cpu_bf16_flags() -> frozenset[str]:
    """The CPU's bf16 feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return frozenset(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
    return frozenset()


@dataclass(frozen=True)
class DevicePolicy:
    """Where and how the training steps run. `autocast()` wraps a training step's forward;
    `prepare(model)` moves (and optionally converts/compiles) a model in place;
    `inputs(x)` lays out a batch to match."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move `model` to the device (channels_last if on). Compiles in place with
        `nn.Module.compile`, so state-dict keys stay unchanged."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.compile:
            compile_in_place(model)
        return model

    def inputs(self, images: Tensor) -> Tensor:
        if self.channels_last and images.ndim == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def describe(self) -> str:
        on = [k for k in ("bf16", "channels_last", "compile") if getattr(self, k)]
        return f"{self.device} ({', '.join(on) if on else 'fp32, eager'})"


def compile_units(model: nn.Module) -> list[nn.Module]:
    """The parts of `model` that torch.compile sees with static shapes. A standalone network is
    one unit. A supernet runs a new path each step (recompiling the whole graph per path would
    never end), so its units are the candidate ops, compiled once and reused by every path that
    runs them; the rest (stem, cell wiring) stays eager."""

    if not isinstance(model, Supernet):
        return [model]
    return [
        op
        for dag in model.modules()
        if isinstance(dag, CellDAG)
        for edge in dag.edges.values()
        for op in edge.values()  # type: ignore[operator]
    ]


def compile_in_place(model: nn.Module) -> None:
    """torch.compile `compile_units(model)` in place (`nn.Module.compile`: state dicts keep
    their keys, so checkpoints stay interchangeable with eager runs)."""
    units = compile_units(model)
    for module in units:
        module.compile(dynamic=False)
    log.debug("compiled %d module(s) of %s", len(units), type(model).__name__)


def device_policy(
    device: str | torch.device | None = "auto",
    *,
    bf16: bool | None = None,
    channels_last: bool | None = None,
    compile: bool | None = None,
) -> DevicePolicy:
    """The policy for `device`; None = this module's default, True/False forces a switch."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    return DevicePolicy(
        device=dev,
        bf16=cuda if bf16 is None else bf16,
        channels_last=dev.type in ("cuda", "cpu") if channels_last is None else channels_last,
        compile=False if compile is None else compile,
    )
