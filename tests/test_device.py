"""The device policy: device resolution with one-line errors, defaults per device, and every
switch (bf16 autocast, channels_last, compile) exercised on the CPU so its code path cannot rot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robnas.device as device_mod
from robnas.cli import main
from robnas.config import TrainConfig
from robnas.device import DeviceError, DevicePolicy, device_policy, resolve_device
from robnas.training.steps import AdversarialStep, make_optimizer

ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_what_exists(no_gpu, monkeypatch):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_missing_or_unknown_device_is_one_line(no_gpu):
    with pytest.raises(DeviceError, match="no CUDA GPU") as err:
        resolve_device("cuda")
    assert "\n" not in str(err.value)
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_cli_cuda_without_gpu_exits_2_and_writes_nothing(no_gpu, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", ARCH, "--preset", "tiny", "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no CUDA GPU" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_defaults_per_device(no_gpu, monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_bf16_flags", lambda: frozenset())
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    cpu = device_policy("cpu")
    assert (cpu.bf16, cpu.channels_last, cpu.compile) == (False, True, False)
    assert not device_policy("cpu", channels_last=False).channels_last
    # not even a CPU with AMX-BF16 tiles gets autocast by default (measured 1.15x slower on the
    # tiny darts net, see the module docstring); asking for it turns it on
    monkeypatch.setattr(device_mod, "cpu_bf16_flags", lambda: frozenset({"amx_bf16", "amx_tile"}))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512_AMX")
    assert not device_policy("cpu").bf16
    assert device_policy("cpu", bf16=True).bf16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = device_policy("cuda")
    assert gpu.bf16 and gpu.channels_last and not gpu.compile
    forced = device_policy("cpu", bf16=True, channels_last=True, compile=True)
    assert (forced.bf16, forced.channels_last, forced.compile) == (True, True, True)


def _tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


@pytest.mark.parametrize(
    "switch", ["bf16", "channels_last", "compile"], ids=["bf16", "channels_last", "compile"]
)
def test_each_switch_trains_one_step_on_cpu(switch):
    policy = DevicePolicy(torch.device("cpu"), **{switch: True})
    torch.manual_seed(0)
    model = policy.prepare(_tiny_net())
    before = [p.detach().clone() for p in model.parameters()]
    cfg = TrainConfig(method="pgd", steps=1, batch_size=8, lr=0.1, epochs=1)
    step = AdversarialStep(cfg, make_optimizer(model, cfg), None, policy=policy)
    gen = torch.Generator().manual_seed(0)
    images = policy.inputs(torch.rand(8, 3, 8, 8, generator=gen))
    labels = torch.randint(0, 10, (8,), generator=gen)
    if switch == "channels_last":
        assert images.is_contiguous(memory_format=torch.channels_last)
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    loss, logits = step(model, images, labels, gen)
    assert torch.isfinite(loss) and logits.shape == (8, 10)
    if switch == "bf16":
        assert step.autocast and logits.dtype == torch.bfloat16
    if switch == "compile":
        assert model._compiled_call_impl is not None  # compiled in place: state-dict keys kept
        assert set(model.state_dict()) == set(_tiny_net().state_dict())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_supernet_compiles_its_ops_not_the_changing_path():
    from robnas.device import compile_units
    from robnas.models.network import CellDAG
    from robnas.models.supernet import Supernet

    supernet = Supernet("nb201", {"C": 4, "N": 1})
    units = compile_units(supernet)
    ops = [
        op
        for d in supernet.modules()
        if isinstance(d, CellDAG)
        for e in d.edges.values()
        for op in e.values()
    ]
    assert units == ops and supernet not in units and len(units) > 10
    assert compile_units(_tiny_net())[0].__class__ is nn.Sequential
