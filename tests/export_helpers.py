"""Tiny architectures, trained-looking weights and checkpoints shared by the export tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from robnas.models.resolve import ArchSpec, resolve_arch

# A DARTS cell with a zero node (node 2) and an edge holding two ops; an NB201 cell with a zero edge.
DARTS = (
    "darts:|sep_conv_3x3~0|none~1|+|skip_connect~0|sep_conv_3x3~1|none~2|"
    "+|none~0|none~1|none~2|none~3|+|sep_conv_3x3~0|skip_connect~1|sep_conv_3x3~1|none~2|none~3|skip_connect~4|"
)
NB201 = "nb201:|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
MACROS = {"darts": {"C": 4, "layers": 3}, "nb201": {"C": 4, "N": 1}}
ARCHS = {"darts": DARTS, "nb201": NB201}


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Tiny models: one thread avoids OpenMP contention on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_spec(kind: str, **macro: Any) -> ArchSpec:
    return resolve_arch(ARCHS[kind], **{**MACROS[kind], **macro})


def trained(spec: ArchSpec, seed: int = 1) -> nn.Module:
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


def checkpoint(spec: ArchSpec, model: nn.Module, **extra: Any) -> dict[str, Any]:
    """The trainer's checkpoint layout, including the training state export drops."""
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


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
