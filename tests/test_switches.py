"""The architectural-modification study networks and their switches NAME[bn=..,residual=..,se=..]."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.cli import main
from robnas.errors import ConfigError, UnknownName
from robnas.models.layers import SkipAdd, SqueezeExcite
from robnas.models.resolve import build, resolve_arch
from robnas.models.switches import canonical_name, network_names, resolve_switches, split_name

STUDY = ("vgg16", "inception", "mobilenet_v2", "mobilenet_v3")
# The standard form of each network.
DEFAULTS = {
    "vgg16": {"bn": True, "residual": False, "se": False},
    "inception": {"bn": True, "residual": False, "se": False},
    "mobilenet_v2": {"bn": True, "residual": True, "se": False},
    "mobilenet_v3": {"bn": True, "residual": True, "se": True},
}


def _census(model: nn.Module) -> dict[str, int]:
    mods = list(model.modules())
    return {
        "bn": sum(isinstance(m, nn.BatchNorm2d) for m in mods),
        "se": sum(isinstance(m, SqueezeExcite) for m in mods),
        "residual": sum(isinstance(m, SkipAdd) for m in mods),
    }


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return build(name)


def test_study_networks_are_registered_with_their_defaults() -> None:
    assert set(STUDY) <= set(network_names())
    for name in STUDY:
        assert resolve_switches(name)[1] == DEFAULTS[name]


@pytest.mark.parametrize("name", STUDY)
@pytest.mark.parametrize("switch", ["bn", "residual", "se"])
def test_each_switch_changes_the_module_as_it_says(name: str, switch: str) -> None:
    default = DEFAULTS[name][switch]
    flipped = f"{name}[{switch}={'off' if default else 'on'}]"
    before, after = _census(_meta(name)), _census(_meta(flipped))
    on, off = (before, after) if default else (after, before)
    assert on[switch] > 0 and off[switch] == 0, (on, off)
    # the other switches are untouched (Inception's projection shortcuts carry their own BN)
    if switch != "residual":
        assert before["residual"] == after["residual"]
    if switch != "se":
        assert before["se"] == after["se"]


@pytest.mark.parametrize("name", STUDY)
def test_defaults_match_the_standard_form(name: str) -> None:
    census = _census(_meta(name))
    for switch, on in DEFAULTS[name].items():
        assert (census[switch] > 0) == on, (switch, census)


@pytest.mark.parametrize(
    "arch",
    ["vgg16", "vgg16[bn=off,residual=on,se=on]", "inception[residual=on,se=on]",
     "mobilenet_v2[se=on]", "mobilenet_v2[residual=off,bn=off]", "mobilenet_v3[se=off]"],
)  # fmt: skip
def test_forward_backward_and_residual_adds_fire(arch: str) -> None:
    model = build(arch)
    calls: list[int] = []
    for m in model.modules():
        if isinstance(m, SkipAdd):
            m.register_forward_hook(lambda _m, _i, _o: calls.append(1))
    out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert len(calls) == _census(model)["residual"]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_vgg16_standard_form_has_the_published_size() -> None:
    # kuangliu/pytorch-cifar VGG16 with BN: 14,728,266 parameters
    assert sum(p.numel() for p in _meta("vgg16").parameters()) == 14_728_266
    assert _census(_meta("vgg16[residual=on]"))["residual"] == 9  # convs with equal widths


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("vgg16", "vgg16"),
        ("vgg16[bn=on]", "vgg16"),
        ("VGG16[ bn = off ]", "vgg16[bn=off]"),
        ("mobilenet_v2[se=on,bn=off]", "mobilenet_v2[bn=off,se=on]"),
        ("inception[se=on,residual=on,bn=on]", "inception[residual=on,se=on]"),
        ("mobilenet_v3[se=off]", "mobilenet_v3[se=off]"),
    ],
)
def test_canonical_name_round_trip(given: str, canonical: str) -> None:
    spec = resolve_arch(given)
    assert spec.name == canonical == spec.label
    assert resolve_arch(spec.name).name == canonical
    assert _census(_meta(given)) == _census(_meta(canonical))


def test_split_and_canonical_helpers() -> None:
    assert split_name("vgg16[bn=off]") == ("vgg16", {"bn": "off"})
    assert canonical_name("x", {"bn": True, "se": True}, {"bn": True, "se": False}) == "x[se=on]"


@pytest.mark.parametrize(
    ("arch", "error", "message"),
    [
        ("vgg16[dropout=on]", UnknownName, "known: bn, residual, se"),
        ("vgg16[bn=maybe]", ConfigError, "on or off"),
        ("vgg16[bn=off,bn=on]", ConfigError, "once per key"),
        ("vgg16[bn]", ConfigError, "key=value"),
        ("robust_resnet_a1[bn=off]", UnknownName, "takes no switches"),
        ("vgg19[bn=off]", UnknownName, "vgg16"),
    ],
)
def test_bad_switches_are_one_line_errors(arch: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        resolve_arch(arch)
    assert "\n" not in str(info.value)


def test_cli_accepts_switches_and_rejects_bad_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "info", "vgg16[bn=off]"]) == 0
    assert "vgg16[bn=off]" in capsys.readouterr().out
    assert main(["arch", "info", "vgg16[bn=maybe]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "on or off" in err and len(err.splitlines()) == 1
