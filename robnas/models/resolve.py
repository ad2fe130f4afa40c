"""`robnas.build`: any architecture by genotype, published name or baseline name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from robnas.data.datasets import dataset_info
from robnas.errors import ConfigError, UnknownName
from robnas.genotype import Genotype
from robnas.models.baselines import BASELINES
from robnas.models.builder import build as build_genotype
from robnas.models.published import get_published, published_names
from robnas.models.switches import build_network, is_network_name, network_names, resolve_switches
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import Size


@dataclass(frozen=True)
class ArchSpec:
    """What to build: a genotype of a space at a macro size, or a baseline by name."""

    name: str
    dataset: str
    genotype: Genotype | None = None
    space: SearchSpace | None = None
    macro: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.genotype.to_str() if self.genotype is not None else self.name

    def build(self) -> nn.Module:
        if self.genotype is None:
            info = dataset_info(self.dataset)
            if self.name in BASELINES:
                return BASELINES.get(self.name)(info.num_classes, info.mean, info.std)
            return build_network(self.name, info.num_classes, info.mean, info.std)
        assert self.space is not None
        return build_genotype(self.space, self.genotype, self.macro, self.dataset)


def baseline_names() -> list[str]:
    return BASELINES.names()


def resolve_arch(
    arch: Genotype | str,
    dataset: str = "cifar10",
    *,
    space: SearchSpace | str | None = None,
    size: Size | str | None = None,
    base: dict[str, Any] | None = None,
    **macro: Any,
) -> ArchSpec:
    """Turn a genotype, genotype string, published name or baseline name into an ArchSpec.

    The size: `base` (default the space's default macro, or a published network's own), then
    `size` (a `Size` or its text: a name of the space's `[sizes]`, counts, or both), then the
    `macro` overrides (None: not given). Baselines have one size: naming one is refused."""
    if isinstance(size, str):
        size = Size.parse(size)
    overrides = {k: v for k, v in macro.items() if v is not None}
    if isinstance(arch, str) and arch.strip().lower() in published_names():
        pub = get_published(arch.strip().lower())
        sp = get_space("darts")
        m = sp.resolve_size(size, base={**pub.macro, **(base or {})}, **overrides)
        return ArchSpec(pub.name, dataset, pub.genotype, sp, {**m, "normalize": False})
    if (
        space is None
        and isinstance(arch, str)
        and "~" not in arch
        and ":" not in arch
        and not arch.startswith("{")
    ):
        name = arch.strip().lower()
        known_name = name in baseline_names() or is_network_name(name)
        if known_name and (overrides or (size is not None and not size.fallback)):
            raise ConfigError(
                f"{name} is a network of one size; --size, --C, --layers and --N size genotypes "
                "and the published cells"
            )
        if name in baseline_names():
            return ArchSpec(name, dataset)
        if is_network_name(name):  # e.g. robust_resnet_a1, vgg16[bn=off]: canonical name kept
            return ArchSpec(resolve_switches(name)[2], dataset)
        known = ", ".join(published_names() + baseline_names() + network_names())
        raise UnknownName(
            f"unknown architecture {arch!r}: give a genotype string (space:|op~0|+...) or one of "
            f"{known} (switches: NAME[bn=on|off,residual=on|off,se=on|off])"
        )
    if isinstance(space, str):
        space = get_space(space)
    if space is None:
        name = arch.space if isinstance(arch, Genotype) else _space_prefix(arch)
        space = get_space(name)
    m = space.resolve_size(size, base=base, **overrides)
    genotype = space.parse(arch)
    space.validate(genotype, m)
    return ArchSpec(genotype.to_str(), dataset, genotype, space, m)


def _space_prefix(text: str) -> str:
    text = text.strip()
    if text.startswith("{"):
        return str(json.loads(text).get("space", ""))
    name, sep, _ = text.partition(":")
    if not sep or name.startswith("|"):
        raise UnknownName(
            f"cannot tell the space of {text[:40]!r}: prefix it with 'darts:' or 'nb201:'"
        )
    return name


def build(
    arch: Genotype | str,
    dataset: str = "cifar10",
    *,
    space: SearchSpace | str | None = None,
    size: Size | str | None = None,
    **macro: Any,
) -> nn.Module:
    """A network taking images in [0,1]: `build("robnet_large")`, `build("resnet18")`,
    `build("darts:|sep_conv_3x3~0|...", size="tiny")`, `build(genotype, C=16, layers=8)`."""
    return resolve_arch(arch, dataset, space=space, size=size, **macro).build()


__all__ = ["ArchSpec", "baseline_names", "build", "published_names", "resolve_arch"]
