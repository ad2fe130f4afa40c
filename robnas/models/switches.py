"""Named networks beyond the baselines, and the switch syntax `NAME[bn=on|off,residual=on|off,se=on|off]`.

Two kinds share one registry: the macro networks of wrn.py (`robust_resnet_a1`, `wrn34_r`, ...;
no switches) and the networks of the architectural-modification study (`vgg16`, `inception`,
`mobilenet_v2`, `mobilenet_v3`), whose switches default to each network's standard form.
The canonical name lists only switches that differ from the defaults, in the order bn, residual,
se: `vgg16[bn=on]` is `vgg16`; `mobilenet_v2[se=on,bn=off]` is `mobilenet_v2[bn=off,se=on]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from torch import nn

from robnas.errors import ConfigError, UnknownName
from robnas.models import inception, mobilenet, vgg, wrn
from robnas.registry import Registry

SWITCHES = ("bn", "residual", "se")
_VALUES = {"on": True, "off": False}
_NAME = re.compile(r"\s*([a-z0-9_]+)\s*(?:\[(.*)\])?\s*")


@dataclass(frozen=True)
class NamedNet:
    """factory(num_classes, mean, std, **switches) -> model taking images in [0,1]."""

    name: str
    factory: Callable[..., nn.Module]
    defaults: Mapping[str, bool] = field(default_factory=dict)
    description: str = ""


_REGISTRY: Registry[NamedNet] | None = None


def networks() -> Registry[NamedNet]:
    """The registry, filled on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        reg: Registry[NamedNet] = Registry("network")
        for name, cfg in wrn.NAMED_MACROS.items():
            desc = f"{cfg.block} blocks, depths {list(cfg.depths)}, widths {list(cfg.widths)}"
            reg.add(name, NamedNet(name, partial(wrn.build_macro, cfg), {}, desc))
        study = (
            ("vgg16", vgg.vgg16, vgg.VGG_DEFAULTS, "VGG-16, CIFAR form"),
            ("inception", inception.inception, inception.INCEPTION_DEFAULTS, "GoogLeNet, CIFAR form"),
            ("mobilenet_v2", mobilenet.mobilenet_v2, mobilenet.V2_DEFAULTS, "MobileNetV2, CIFAR form"),
            ("mobilenet_v3", mobilenet.mobilenet_v3, mobilenet.V3_DEFAULTS, "MobileNetV3-Small, CIFAR form"),
        )  # fmt: skip
        for name, fn, defaults, desc in study:
            reg.add(name, NamedNet(name, fn, dict(defaults), desc))
        _REGISTRY = reg
    return _REGISTRY


def network_names() -> list[str]:
    return networks().names()


def split_name(text: str) -> tuple[str, dict[str, str]]:
    """`vgg16[bn=off, se=on]` -> ("vgg16", {"bn": "off", "se": "on"}); no validation of keys."""
    m = _NAME.fullmatch(text.lower())
    if m is None:
        raise ConfigError(
            f"cannot read architecture name {text!r}: write NAME or NAME[bn=on|off,residual=on|off,se=on|off]"
        )
    given: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key or key in given:
            raise ConfigError(f"switch {item!r} in {text!r}: write key=value once per key")
        given[key] = value
    return m.group(1), given


def resolve_switches(text: str) -> tuple[NamedNet, dict[str, bool], str]:
    """The network, its full switch settings and its canonical name; one-line errors list the
    known names, switches and values."""
    base, given = split_name(text)
    net = networks().get(base)
    if given and not net.defaults:
        raise UnknownName(f"{base} takes no switches; drop the [...] (switches exist for "
                          f"{', '.join(n for n in network_names() if networks().get(n).defaults)})")  # fmt: skip
    settings = dict(net.defaults)
    for key, value in given.items():
        if key not in net.defaults:
            raise UnknownName(
                f"unknown switch {key!r} for {base}; known: {', '.join(net.defaults)}"
            )
        if value not in _VALUES:
            raise ConfigError(f"switch {key}={value!r} for {base}: the value must be on or off")
        settings[key] = _VALUES[value]
    return net, settings, canonical_name(base, settings, net.defaults)


def canonical_name(base: str, settings: Mapping[str, bool], defaults: Mapping[str, bool]) -> str:
    changed = [f"{k}={'on' if settings[k] else 'off'}" for k in SWITCHES
               if k in defaults and settings[k] != defaults[k]]  # fmt: skip
    return f"{base}[{','.join(changed)}]" if changed else base


def is_network_name(text: str) -> bool:
    """Whether text starts with a registered network's name (its switches may still be wrong)."""
    m = re.match(r"\s*([a-z0-9_]+)\s*(\[|$)", text.lower())
    return m is not None and m.group(1) in networks()


def build_network(
    text: str, num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> nn.Module:
    net, settings, _ = resolve_switches(text)
    return net.factory(num_classes, mean, std, **settings)


__all__ = [
    "SWITCHES",
    "NamedNet",
    "build_network",
    "canonical_name",
    "is_network_name",
    "network_names",
    "networks",
    "resolve_switches",
    "split_name",
]
